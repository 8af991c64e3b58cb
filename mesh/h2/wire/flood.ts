/**
 * A counter of frames a peer sends that cost this side work but carry no request (SETTINGS,
 * PING, empty DATA, stream resets): more than the limit within one window is a flood.
 * @module
 */

/** Counts events per fixed window of time. */
export class FloodGuard {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #start: number;
  #count = 0;

  /** At most `limit` events per `windowMs`. */
  constructor(limit: number, windowMs: number, now: () => number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
    this.#start = now();
  }

  /** Counts one event; true when the window's limit is passed. */
  hit(): boolean {
    if (++this.#count <= this.#limit) return false;
    const now = this.#now();
    if (now - this.#start >= this.#windowMs) {
      this.#start = now;
      this.#count = 1;
      return false;
    }
    return true;
  }
}
