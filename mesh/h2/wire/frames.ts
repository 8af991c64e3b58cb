/**
 * HTTP/2 framing constants (RFC 9113) and the frame header layout, shared by the reader and
 * the writer. No I/O.
 * @module
 */

/** Frame types. */
export const FrameType = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

/** Frame flags. */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** Error codes (RST_STREAM and GOAWAY). */
export const ErrorCode = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  SETTINGS_TIMEOUT: 4,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  CONNECT_ERROR: 10,
  ENHANCE_YOUR_CALM: 11,
  INADEQUATE_SECURITY: 12,
  HTTP_1_1_REQUIRED: 13,
} as const;

/** SETTINGS identifiers. */
export const Setting = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const;

/** Bytes of a frame header. */
export const FRAME_HEADER_BYTES = 9;
/** The client connection preface (RFC 9113 section 3.4). */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** The default and smallest SETTINGS_MAX_FRAME_SIZE. */
export const DEFAULT_MAX_FRAME = 16_384;
/** The default flow-control window. */
export const DEFAULT_WINDOW = 65_535;
/** The largest flow-control window. */
export const MAX_WINDOW = 0x7fff_ffff;

/** A connection error: GOAWAY with `code`, then close. */
export class H2ConnectionError extends Error {
  /** Creates the error with its HTTP/2 code. */
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "H2ConnectionError";
  }
}

/** Writes a frame header at `b[o]`. */
export function putFrameHeader(
  b: Uint8Array,
  o: number,
  length: number,
  type: number,
  flags: number,
  stream: number,
): void {
  b[o] = (length >>> 16) & 0xff;
  b[o + 1] = (length >>> 8) & 0xff;
  b[o + 2] = length & 0xff;
  b[o + 3] = type;
  b[o + 4] = flags;
  b[o + 5] = (stream >>> 24) & 0x7f;
  b[o + 6] = (stream >>> 16) & 0xff;
  b[o + 7] = (stream >>> 8) & 0xff;
  b[o + 8] = stream & 0xff;
}

/** The 31-bit big-endian number at `b[o]` (the reserved bit dropped). */
export function read31(b: Uint8Array, o: number): number {
  return ((b[o]! & 0x7f) * 0x1000000) + (b[o + 1]! << 16) + (b[o + 2]! << 8) + b[o + 3]!;
}

/** The 32-bit big-endian number at `b[o]`. */
export function read32(b: Uint8Array, o: number): number {
  return (b[o]! * 0x1000000) + (b[o + 1]! << 16) + (b[o + 2]! << 8) + b[o + 3]!;
}
