/**
 * Length-prefixed framing: `[u32 big-endian length][payload]`.
 *
 * The decoder is a pure, incremental state machine: it accepts chunks as they come off a
 * socket (a frame split across many reads, or many frames in one read) and never allocates
 * more than the bytes it has actually been given, whatever length a peer claims.
 * @module
 */

/** Bytes in a frame's length prefix. */
export const FRAME_HEADER_BYTES = 4;

/** Default largest payload accepted or sent; snapshots larger than this are chunked by the caller. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** The largest value a u32 length prefix can carry. */
export const MAX_U32 = 0xffff_ffff;

/** Why a decoder refused a stream; the connection carrying it must be closed. */
export type FrameErrorReason = "oversize" | "zero_length";

/** A decoding failure; sticky, every later `next()` returns it again. */
export interface FrameError {
  /** Discriminant. */
  readonly kind: "error";
  /** What was wrong with the length prefix. */
  readonly reason: FrameErrorReason;
  /** The length the peer claimed. */
  readonly length: number;
  /** The limit in force when the length was read. */
  readonly maxFrameBytes: number;
}

/** One step of decoding: a complete frame, a request for more bytes, or a fatal error. */
export type DecodeResult =
  | { readonly kind: "frame"; readonly frame: Uint8Array }
  | { readonly kind: "need_more" }
  | FrameError;

const NEED_MORE: DecodeResult = Object.freeze({ kind: "need_more" });
const EMPTY = new Uint8Array(0);

/** Writes the 4-byte big-endian length prefix for `length` into `dst` at `offset`. */
export function writeFrameHeader(dst: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(length) || length < 0 || length > MAX_U32) {
    throw new RangeError(`frame length ${length} does not fit a u32 prefix`);
  }
  dst[offset] = length >>> 24;
  dst[offset + 1] = (length >>> 16) & 0xff;
  dst[offset + 2] = (length >>> 8) & 0xff;
  dst[offset + 3] = length & 0xff;
}

/** Returns a new buffer holding `payload` with its length prefix. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(out, 0, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Options for {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest payload accepted; a longer claimed length is an error. @default DEFAULT_MAX_FRAME_BYTES */
  maxFrameBytes?: number;
}

/**
 * Incremental frame decoder.
 *
 * Usage: `push(chunk)`, then call `next()` until it returns `need_more` (or an error). Once
 * `need_more` is returned every byte of the chunk has been consumed or copied, so the caller
 * may reuse its read buffer. Returned frames are owned copies, never views into a chunk.
 */
export class FrameDecoder {
  /** Largest payload accepted for frames whose header has not been read yet. */
  maxFrameBytes: number;

  #chunk: Uint8Array = EMPTY;
  #offset = 0;
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  /** Length of the frame being assembled, or -1 while reading a header. */
  #bodyLength = -1;
  // Partial bodies are kept as a list and joined once, so a frame split into n reads costs
  // O(length) copying, not O(n * length), and nothing is allocated ahead of the bytes.
  #parts: Uint8Array[] = [];
  #partsBytes = 0;
  #error: FrameError | null = null;

  /** Creates a decoder. */
  constructor(opts: FrameDecoderOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes held for a frame that is not complete yet (never more than was pushed). */
  get bufferedBytes(): number {
    return this.#headerFill + this.#partsBytes;
  }

  /** Whether the stream is currently inside a frame (a clean end of stream is not). */
  get midFrame(): boolean {
    return this.#headerFill > 0 || this.#bodyLength >= 0;
  }

  /** Feeds the next chunk; the previous chunk must have been drained to `need_more`. */
  push(chunk: Uint8Array): void {
    if (this.#offset < this.#chunk.length) {
      throw new Error(
        `FrameDecoder.push: previous chunk not drained (${
          this.#chunk.length - this.#offset
        } bytes left)`,
      );
    }
    this.#chunk = chunk;
    this.#offset = 0;
  }

  /** Decodes the next frame from the bytes pushed so far. */
  next(): DecodeResult {
    if (this.#error) return this.#error;
    const chunk = this.#chunk;
    if (this.#bodyLength < 0) {
      let length: number;
      const avail = chunk.length - this.#offset;
      if (this.#headerFill === 0 && avail >= FRAME_HEADER_BYTES) {
        const o = this.#offset;
        // `>>> 0` keeps the top bit from turning the length negative.
        length =
          ((chunk[o]! << 24) | (chunk[o + 1]! << 16) | (chunk[o + 2]! << 8) | chunk[o + 3]!) >>>
          0;
        this.#offset = o + FRAME_HEADER_BYTES;
      } else {
        const take = Math.min(avail, FRAME_HEADER_BYTES - this.#headerFill);
        this.#header.set(chunk.subarray(this.#offset, this.#offset + take), this.#headerFill);
        this.#headerFill += take;
        this.#offset += take;
        if (this.#headerFill < FRAME_HEADER_BYTES) return this.#release();
        const h = this.#header;
        length = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
        this.#headerFill = 0;
      }
      if (length === 0 || length > this.maxFrameBytes) {
        this.#error = {
          kind: "error",
          reason: length === 0 ? "zero_length" : "oversize",
          length,
          maxFrameBytes: this.maxFrameBytes,
        };
        this.#release();
        return this.#error;
      }
      this.#bodyLength = length;
    }

    const avail = chunk.length - this.#offset;
    const missing = this.#bodyLength - this.#partsBytes;
    if (this.#partsBytes === 0 && avail >= missing) {
      const frame = chunk.slice(this.#offset, this.#offset + missing);
      this.#offset += missing;
      this.#bodyLength = -1;
      return { kind: "frame", frame };
    }
    const take = Math.min(avail, missing);
    if (take > 0) {
      this.#parts.push(chunk.slice(this.#offset, this.#offset + take));
      this.#partsBytes += take;
      this.#offset += take;
    }
    if (this.#partsBytes < this.#bodyLength) return this.#release();
    const frame = new Uint8Array(this.#bodyLength);
    let at = 0;
    for (const p of this.#parts) {
      frame.set(p, at);
      at += p.length;
    }
    this.#parts = [];
    this.#partsBytes = 0;
    this.#bodyLength = -1;
    return { kind: "frame", frame };
  }

  /** Drops the reference to a fully consumed chunk so the caller's buffer is not retained. */
  #release(): DecodeResult {
    this.#chunk = EMPTY;
    this.#offset = 0;
    return NEED_MORE;
  }
}
