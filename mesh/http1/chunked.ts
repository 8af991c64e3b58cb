/**
 * Streaming validation of chunked transfer coding (RFC 9112 section 7.1).
 *
 * The framer does not decode: a proxy relays chunked bytes untouched and only needs to know
 * where the body ends and that the framing is sound, so chunk data is skipped in bulk.
 * @module
 */
import { HttpParseError } from "./errors.ts";

/** Most hex digits in a chunk size (15 keeps sizes below 2^60, far above any real chunk). */
export const MAX_CHUNK_SIZE_DIGITS = 15;
/** Most bytes of chunk extensions on one chunk line. */
export const MAX_CHUNK_EXTENSION_BYTES = 4096;
/** Most bytes of trailer fields after the last chunk. */
export const MAX_TRAILER_BYTES = 16 * 1024;

const enum S {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  EndLf,
  Done,
}

const HEX = new Int8Array(256).fill(-1);
{
  for (let i = 0; i < 10; i++) HEX[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    HEX[65 + i] = 10 + i;
    HEX[97 + i] = 10 + i;
  }
}

/** Tracks chunk boundaries across arbitrary splits of a chunked body. */
export class ChunkedFramer {
  #state: S = S.Size;
  #size = 0;
  #digits = 0;
  #extBytes = 0;
  #extSemi = false;
  #trailerBytes = 0;
  #remaining = 0;
  #payload = 0;
  readonly #maxBodyBytes: number;

  /** Creates a framer; bodies whose decoded size exceeds `maxBodyBytes` fail with 413. */
  constructor(maxBodyBytes: number = Number.MAX_SAFE_INTEGER) {
    this.#maxBodyBytes = maxBodyBytes;
  }

  /** Whether the terminating last-chunk and trailer section have been seen. */
  get done(): boolean {
    return this.#state === S.Done;
  }

  /** Decoded payload bytes seen so far. */
  get payloadBytes(): number {
    return this.#payload;
  }

  /** Prepares the framer for another body. */
  reset(): void {
    this.#state = S.Size;
    this.#size = 0;
    this.#digits = 0;
    this.#extBytes = 0;
    this.#trailerBytes = 0;
    this.#remaining = 0;
    this.#payload = 0;
  }

  /**
   * Consumes `buf[start, end)`. Returns the offset where the body ended when it ended inside
   * this range (bytes after it belong to the next message), otherwise `end`.
   * Throws {@linkcode HttpParseError} on malformed framing.
   */
  feed(buf: Uint8Array, start: number, end: number): number {
    let p = start;
    while (p < end) {
      switch (this.#state) {
        case S.Data: {
          const n = Math.min(this.#remaining, end - p);
          p += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = S.DataCr;
          break;
        }
        case S.Size: {
          const c = buf[p]!;
          const h = HEX[c]!;
          if (h >= 0) {
            if (++this.#digits > MAX_CHUNK_SIZE_DIGITS) {
              throw new HttpParseError("bad_chunk_size", 400, "chunk size has too many digits");
            }
            this.#size = this.#size * 16 + h;
            p++;
          } else if (this.#digits === 0) {
            throw new HttpParseError(
              "bad_chunk_size",
              400,
              `invalid chunk size byte 0x${c.toString(16)}`,
            );
          } else if (c === 13) {
            this.#state = S.SizeLf;
            p++;
          } else if (c === 59 || c === 32 || c === 9) {
            this.#state = S.Ext;
            this.#extBytes = 0;
            this.#extSemi = false;
          } else {
            throw new HttpParseError(
              "bad_chunk_size",
              400,
              `invalid chunk size byte 0x${c.toString(16)}`,
            );
          }
          break;
        }
        case S.Ext: {
          const c = buf[p]!;
          if (c === 13) {
            this.#state = S.SizeLf;
          } else if (!this.#extSemi && c !== 32 && c !== 9) {
            // Only whitespace may separate the size from the ";" that starts an extension.
            if (c !== 59) {
              throw new HttpParseError("bad_chunk_size", 400, "garbage after chunk size");
            }
            this.#extSemi = true;
          } else if ((c < 32 && c !== 9) || c === 127) {
            throw new HttpParseError("bad_chunk_framing", 400, "control byte in chunk extension");
          } else if (++this.#extBytes > MAX_CHUNK_EXTENSION_BYTES) {
            throw new HttpParseError("chunk_extension_too_long", 400, "chunk extension too long");
          }
          p++;
          break;
        }
        case S.SizeLf: {
          if (buf[p] !== 10) {
            throw new HttpParseError("bad_chunk_framing", 400, "chunk size line not ended by CRLF");
          }
          p++;
          if (this.#size === 0) {
            this.#state = S.TrailerStart;
          } else {
            this.#payload += this.#size;
            if (this.#payload > this.#maxBodyBytes) {
              throw new HttpParseError("body_too_large", 413, `body exceeds ${this.#maxBodyBytes}`);
            }
            this.#remaining = this.#size;
            this.#state = S.Data;
          }
          this.#size = 0;
          this.#digits = 0;
          break;
        }
        case S.DataCr:
          if (buf[p] !== 13) {
            throw new HttpParseError("bad_chunk_framing", 400, "chunk data not followed by CRLF");
          }
          p++;
          this.#state = S.DataLf;
          break;
        case S.DataLf:
          if (buf[p] !== 10) {
            throw new HttpParseError("bad_chunk_framing", 400, "chunk data not followed by CRLF");
          }
          p++;
          this.#state = S.Size;
          break;
        case S.TrailerStart:
          if (buf[p] === 13) {
            this.#state = S.EndLf;
            p++;
          } else {
            this.#state = S.TrailerLine;
          }
          break;
        case S.TrailerLine: {
          const c = buf[p]!;
          if (++this.#trailerBytes > MAX_TRAILER_BYTES) {
            throw new HttpParseError("trailers_too_large", 400, "trailer section too large");
          }
          if (c === 13) this.#state = S.TrailerLf;
          else if (c === 10 || c === 0 || c === 127) {
            throw new HttpParseError("bad_chunk_framing", 400, "bad byte in trailer section");
          }
          p++;
          break;
        }
        case S.TrailerLf:
          if (buf[p] !== 10) {
            throw new HttpParseError("bad_chunk_framing", 400, "trailer line not ended by CRLF");
          }
          p++;
          this.#state = S.TrailerStart;
          break;
        case S.EndLf:
          if (buf[p] !== 10) {
            throw new HttpParseError("bad_chunk_framing", 400, "chunked body not ended by CRLF");
          }
          p++;
          this.#state = S.Done;
          return p;
        case S.Done:
          return p;
      }
    }
    return p;
  }
}
