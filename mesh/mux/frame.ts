/**
 * The wire format of skein-mux/1: many byte streams over one mutual-TLS connection between two
 * skein proxies. Every frame is a 9-byte header (payload length u32, type u8, stream id u32, all
 * big-endian) and its payload. Pure encoding and decoding, no I/O.
 * @module
 */

/** The ALPN name both proxies offer; a peer that does not offer it gets plain HTTP/1.1. */
export const MUX_ALPN = "skein-mux/1";
/** Bytes in a frame header. */
export const FRAME_HEADER_BYTES = 9;
/** Largest payload a sender puts in one DATA frame. */
export const MAX_DATA_FRAME_BYTES = 16 * 1024;
/** Largest payload a receiver accepts in any frame; beyond it the session is broken. */
export const MAX_FRAME_PAYLOAD_BYTES = 64 * 1024;

/** Frame types. */
export const FrameType = {
  /** Bytes of one stream. */
  Data: 0,
  /** The client opens a stream (ids increase; 0 is never used). */
  Open: 1,
  /** The sender will write no more on this stream (half-close, like a TCP FIN). */
  Fin: 2,
  /** The sender closed the stream before both directions ended (like a TCP RST). */
  Reset: 3,
  /** The receiver has consumed this many more bytes (u32 payload): the sender may send them. */
  Window: 4,
  /** The sender takes no new streams on this connection; open ones finish. */
  GoAway: 5,
  /**
   * The server turned the stream down before reading any of it (going away, stream cap, or
   * its listener closed): the call may safely go to another endpoint.
   */
  Refused: 6,
  /** Liveness probe on stream 0 with an 8-byte payload; the receiver answers with a Pong. */
  Ping: 7,
  /** The answer to a Ping, echoing its payload. */
  Pong: 8,
} as const;

/** Bytes in a Ping or Pong payload. */
export const PING_PAYLOAD_BYTES = 8;

/** One of {@linkcode FrameType}'s values. */
export type FrameTypeValue = typeof FrameType[keyof typeof FrameType];

/** A decoded frame header. */
export interface FrameHeader {
  /** Payload length in bytes. */
  length: number;
  /** Frame type. */
  type: FrameTypeValue;
  /** Stream id (0 for GoAway). */
  stream: number;
}

/** A peer broke the protocol; the whole session must end. */
export class MuxProtocolError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MuxProtocolError";
  }
}

/** Writes a frame header into `buf` at `off`. */
export function writeFrameHeader(
  buf: Uint8Array,
  off: number,
  type: FrameTypeValue,
  stream: number,
  length: number,
): void {
  buf[off] = length >>> 24;
  buf[off + 1] = (length >>> 16) & 0xff;
  buf[off + 2] = (length >>> 8) & 0xff;
  buf[off + 3] = length & 0xff;
  buf[off + 4] = type;
  buf[off + 5] = stream >>> 24;
  buf[off + 6] = (stream >>> 16) & 0xff;
  buf[off + 7] = (stream >>> 8) & 0xff;
  buf[off + 8] = stream & 0xff;
}

/**
 * Decodes the frame header at `buf[off..]`, or returns null when fewer than 9 bytes are there.
 * Throws {@linkcode MuxProtocolError} for an unknown type, an oversized payload, or a payload
 * that does not fit its type.
 */
export function readFrameHeader(buf: Uint8Array, off: number, end: number): FrameHeader | null {
  if (end - off < FRAME_HEADER_BYTES) return null;
  const length = ((buf[off]! << 24) >>> 0) + (buf[off + 1]! << 16) + (buf[off + 2]! << 8) +
    buf[off + 3]!;
  const type = buf[off + 4]!;
  const stream = ((buf[off + 5]! << 24) >>> 0) + (buf[off + 6]! << 16) + (buf[off + 7]! << 8) +
    buf[off + 8]!;
  if (type > FrameType.Pong) throw new MuxProtocolError(`unknown frame type ${type}`);
  if (length > MAX_FRAME_PAYLOAD_BYTES) {
    throw new MuxProtocolError(`frame of ${length} bytes is over ${MAX_FRAME_PAYLOAD_BYTES}`);
  }
  const ping = type === FrameType.Ping || type === FrameType.Pong;
  const expected = type === FrameType.Window ? 4 : ping ? PING_PAYLOAD_BYTES : 0;
  if (type !== FrameType.Data && length !== expected) {
    throw new MuxProtocolError(`frame type ${type} with a ${length}-byte payload`);
  }
  if (stream === 0 ? !(type === FrameType.GoAway || ping) : ping) {
    throw new MuxProtocolError(`frame type ${type} on stream ${stream}`);
  }
  return { length, type: type as FrameTypeValue, stream };
}

/** Reads the u32 increment of a Window frame's payload. */
export function readWindowIncrement(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) >>> 0) + (buf[off + 1]! << 16) + (buf[off + 2]! << 8) + buf[off + 3]!;
}
