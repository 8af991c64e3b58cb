/**
 * Received byte chunks waiting for a pull reader: a socket pushes them as they arrive and
 * `read` copies from the front, so a chunk is never copied into an intermediate buffer.
 * @module
 */

/** A FIFO of received chunks with the count of bytes not read yet. */
export class ChunkQueue {
  /** Chunks not read yet, from `#head` on (the array is reset rather than shifted). */
  #chunks: Uint8Array[] = [];
  #head = 0;
  #size = 0;

  /** Bytes held and not read yet. */
  get size(): number {
    return this.#size;
  }

  /** Whether no chunk is held. */
  get empty(): boolean {
    return this.#head === this.#chunks.length;
  }

  /** Appends a received chunk (kept, not copied). */
  push(c: Uint8Array): void {
    this.#chunks.push(c);
    this.#size += c.length;
  }

  /** Copies from the front into `p`; how many bytes (0 only when empty or `p` is empty). */
  readInto(p: Uint8Array): number {
    if (this.#head === this.#chunks.length) return 0;
    const c = this.#chunks[this.#head]!;
    const k = Math.min(c.length, p.length);
    p.set(k === c.length ? c : c.subarray(0, k));
    this.#size -= k;
    if (k === c.length) {
      if (++this.#head === this.#chunks.length) this.clear();
    } else {
      this.#chunks[this.#head] = c.subarray(k);
    }
    return k;
  }

  /** Hands every held chunk to `fn` in order and empties the queue. */
  drain(fn: (c: Uint8Array) => void): void {
    const chunks = this.#chunks;
    const from = this.#head;
    this.clear();
    for (let i = from; i < chunks.length; i++) fn(chunks[i]!);
  }

  /** Drops everything held. */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#size = 0;
  }
}
