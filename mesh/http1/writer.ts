/**
 * Longest copy done with a plain loop: below it, creating the subarray view that
 * `Uint8Array.set` needs costs more than copying the bytes one by one.
 */
const LOOP_COPY_MAX_BYTES = 256;

/** A growable byte buffer reused across messages so the hot path does not allocate. */
export class ByteWriter {
  /** The backing storage; valid bytes are `buf[0, len)`. */
  buf: Uint8Array;
  /** Number of valid bytes. */
  len = 0;
  readonly #max: number;

  /** Creates a writer with `initial` bytes of storage that never grows past `max`. */
  constructor(initial = 4096, max = 1 << 20) {
    this.buf = new Uint8Array(initial);
    this.#max = max;
  }

  /** Forgets the content, keeping the storage. */
  reset(): void {
    this.len = 0;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    if (need > this.#max) throw new RangeError(`ByteWriter would exceed ${this.#max} bytes`);
    const next = new Uint8Array(Math.min(this.#max, Math.max(need, this.buf.length * 2)));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Appends `src[start, end)`. */
  bytes(src: Uint8Array, start = 0, end = src.length): void {
    const n = end - start;
    if (n <= 0) return;
    this.ensure(n);
    const b = this.buf;
    if (n <= LOOP_COPY_MAX_BYTES) {
      let o = this.len;
      for (let i = start; i < end; i++) b[o++] = src[i]!;
    } else {
      b.set(start === 0 && end === src.length ? src : src.subarray(start, end), this.len);
    }
    this.len += n;
  }

  /** Appends a string one byte per char (ISO-8859-1), so values parsed with latin1 round-trip. */
  latin1(s: string): void {
    const n = s.length;
    this.ensure(n);
    const b = this.buf;
    let o = this.len;
    for (let i = 0; i < n; i++) b[o++] = s.charCodeAt(i) & 0xff;
    this.len = o;
  }

  /** Returns a view of the valid bytes (shares storage; consume before the next write). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}
