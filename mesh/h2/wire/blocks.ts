/**
 * Header blocks as they arrive: a HEADERS frame's fragment (padding and priority stripped),
 * then any CONTINUATION frames, joined into one block once END_HEADERS comes. A block is
 * bounded in bytes and in frames, so a CONTINUATION flood ends the connection. No I/O.
 * @module
 */
import { ErrorCode, Flag, H2ConnectionError } from "./frames.ts";

/** Most frames in one header block (HEADERS plus CONTINUATIONs). */
const _MAX_BLOCK_FRAMES = 64;

/** A complete header block for a stream. */
export interface Block {
  /** The stream it is for. */
  id: number;
  /** The HEADERS frame ended the stream. */
  endStream: boolean;
  /** The HPACK bytes (valid until the next frame is read). */
  fragment: Uint8Array;
}

/** Assembles header blocks; throws {@linkcode H2ConnectionError}. */
export class BlockReader {
  readonly #maxBytes: number;
  #stream = 0;
  #endStream = false;
  #parts: Uint8Array[] = [];
  #bytes = 0;

  /** `maxBytes`: the largest block, compressed. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** The stream whose block is incomplete (0: none): only its CONTINUATION may come next. */
  get pending(): number {
    return this.#stream;
  }

  /** Forgets an incomplete block (the connection is ending). */
  reset(): void {
    this.#stream = 0;
    this.#parts = [];
  }

  /** A HEADERS frame's payload `b[s, e)`; the block when END_HEADERS is set. */
  headers(flags: number, id: number, b: Uint8Array, s: number, e: number): Block | null {
    if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    let from = s;
    let pad = 0;
    if ((flags & Flag.PADDED) !== 0) {
      if (e - s < 1) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS size");
      pad = b[from++]!;
    }
    if ((flags & Flag.PRIORITY) !== 0) from += 5;
    if (from + pad > e) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad HEADERS padding");
    }
    const fragment = b.subarray(from, e - pad);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if ((flags & Flag.END_HEADERS) !== 0) return { id, endStream, fragment };
    this.#stream = id;
    this.#endStream = endStream;
    this.#parts = [fragment.slice()];
    this.#bytes = fragment.length;
    this.#bound();
    return null;
  }

  /** A CONTINUATION frame's payload; the block when END_HEADERS is set. */
  continuation(flags: number, id: number, b: Uint8Array, s: number, e: number): Block | null {
    if (this.#stream === 0 || id !== this.#stream) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION");
    }
    this.#parts.push(b.slice(s, e));
    this.#bytes += e - s;
    this.#bound();
    if ((flags & Flag.END_HEADERS) === 0) return null;
    const fragment = new Uint8Array(this.#bytes);
    let o = 0;
    for (const p of this.#parts) {
      fragment.set(p, o);
      o += p.length;
    }
    const block = { id, endStream: this.#endStream, fragment };
    this.reset();
    return block;
  }

  #bound(): void {
    if (this.#parts.length > _MAX_BLOCK_FRAMES || this.#bytes > this.#maxBytes) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large");
    }
  }
}
