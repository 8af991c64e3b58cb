/**
 * A fixed-capacity FIFO of frames for one peer's writer.
 *
 * A ring buffer rather than `Array.shift()`, so dequeuing is O(1) and the storage never grows
 * past the capacity given at construction.
 * @module
 */

/** Bounded FIFO of frames, tracking the bytes it holds. */
export class FrameQueue {
  readonly #slots: (Uint8Array | undefined)[];
  /** When each slot's frame was queued, so frames too old to matter can be dropped. */
  readonly #queuedAt: Float64Array;
  readonly #maxBytes: number;
  #head = 0;
  #size = 0;
  #bytes = 0;

  /** Creates a queue holding at most `maxFrames` frames and `maxBytes` payload bytes. */
  constructor(maxFrames: number, maxBytes: number) {
    if (!Number.isInteger(maxFrames) || maxFrames < 1) {
      throw new RangeError(`FrameQueue: maxFrames must be a positive integer, got ${maxFrames}`);
    }
    this.#slots = new Array(maxFrames);
    this.#queuedAt = new Float64Array(maxFrames);
    this.#maxBytes = maxBytes;
  }

  /** Frames currently held. */
  get size(): number {
    return this.#size;
  }

  /** Payload bytes currently held. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Appends `frame`, queued at time `at`; returns false (and keeps nothing) when either bound
   * would be exceeded.
   */
  push(frame: Uint8Array, at = 0): boolean {
    if (this.#size === this.#slots.length) return false;
    // An empty queue always takes one frame, so a frame larger than maxBytes can still be sent.
    if (this.#size > 0 && this.#bytes + frame.length > this.#maxBytes) return false;
    const slot = (this.#head + this.#size) % this.#slots.length;
    this.#slots[slot] = frame;
    this.#queuedAt[slot] = at;
    this.#size++;
    this.#bytes += frame.length;
    return true;
  }

  /** Returns the frame `i` places from the head without removing it. */
  peek(i: number): Uint8Array | undefined {
    if (i < 0 || i >= this.#size) return undefined;
    return this.#slots[(this.#head + i) % this.#slots.length];
  }

  /** Removes `n` frames from the head (all of them if fewer are held). */
  drop(n: number): void {
    const k = Math.min(n, this.#size);
    for (let i = 0; i < k; i++) {
      const at = this.#head;
      this.#bytes -= this.#slots[at]!.length;
      this.#slots[at] = undefined;
      this.#head = (at + 1) % this.#slots.length;
    }
    this.#size -= k;
  }

  /** Removes frames queued before `cutoff` from the head (the queue is FIFO); returns how many. */
  dropQueuedBefore(cutoff: number): number {
    let n = 0;
    while (n < this.#size && this.#queuedAt[(this.#head + n) % this.#slots.length]! < cutoff) n++;
    this.drop(n);
    return n;
  }

  /** Removes everything; returns how many frames were discarded. */
  clear(): number {
    const n = this.#size;
    this.drop(n);
    return n;
  }
}
