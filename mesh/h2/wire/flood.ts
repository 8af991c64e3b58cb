/**
 * A counter of frames a peer sends that cost this side work but carry no request (SETTINGS,
 * PING, empty DATA, stream resets): more than the limit within one window is a flood.
 * @module
 */

/** Control frames (SETTINGS, PING, PRIORITY, empty DATA) allowed per window. */
const _MAX_CONTROL_PER_WINDOW = 1000;
/** Streams a peer may reset (or have refused) per window (rapid reset, CVE-2023-44487). */
const _MAX_RESETS_PER_WINDOW = 1000;
/** The counters' window, in ms. */
const _WINDOW_MS = 10_000;

/** Counts events per fixed window of time. */
export class FloodGuard {
  /** The guard of a connection's control frames. */
  static control(now: () => number): FloodGuard {
    return new FloodGuard(_MAX_CONTROL_PER_WINDOW, _WINDOW_MS, now);
  }

  /** The guard of a connection's stream resets and refused streams. */
  static resets(now: () => number): FloodGuard {
    return new FloodGuard(_MAX_RESETS_PER_WINDOW, _WINDOW_MS, now);
  }

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

  /** Takes one event back (a stream that completed normally offsets one reset). */
  relieve(): void {
    if (this.#count > 0) this.#count--;
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
