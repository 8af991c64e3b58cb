/**
 * Spreads the inbound skein-mux/1 sessions of one proxy over its worker threads.
 *
 * The workers share the inbound port with `SO_REUSEPORT`, and the kernel picks a worker by a
 * hash of each connection's addresses. With connections that was balance enough; with the mux a
 * calling worker sends all its calls over one long-lived session, so a few sessions carry all
 * the traffic, and when two of them hash to the same worker that worker does all the work while
 * another idles (measured: one callee thread at 49% CPU, the other at 0%, half the time).
 *
 * So a worker that already holds more sessions than the least loaded worker admits a new one
 * only to tell it to go elsewhere: the session gets a GoAway at once, finishes what the caller
 * already sent on it, and the caller dials again, landing on a random worker. Each retry
 * succeeds with at least 1/workers probability, and the counts converge.
 *
 * The counts live in a `SharedArrayBuffer`, one slot per worker: -1 while the worker takes no
 * sessions (not started, draining or crashed), else its admitted sessions.
 * @module
 */

/** Most workers a balance tracks; workers beyond it always admit. */
export const SESSION_BALANCE_SLOTS = 64;
/** Bytes of the shared buffer. */
export const SESSION_BALANCE_BYTES = SESSION_BALANCE_SLOTS * Int32Array.BYTES_PER_ELEMENT;
/** A slot's value while its worker takes no sessions. */
export const NOT_ACCEPTING = -1;

/**
 * Whether a worker holding `mine` sessions should send a new one elsewhere: yes when some other
 * accepting worker holds fewer. `counts` has one entry per worker, {@linkcode NOT_ACCEPTING}
 * for those taking none.
 */
export function shouldRedirect(mine: number, counts: ArrayLike<number>): boolean {
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c !== NOT_ACCEPTING && c < mine) return true;
  }
  return false;
}

/** A new shared buffer with every slot {@linkcode NOT_ACCEPTING}. */
export function newSessionBalanceBuffer(): SharedArrayBuffer {
  const b = new SharedArrayBuffer(SESSION_BALANCE_BYTES);
  new Int32Array(b).fill(NOT_ACCEPTING);
  return b;
}

/** One worker's view of the shared session counts. */
export class SessionBalance {
  readonly #counts: Int32Array;
  readonly #index: number;
  readonly #workers: number;
  readonly #view: Int32Array;

  /** `index` is this worker's slot, `workers` how many slots are in use. */
  constructor(buffer: SharedArrayBuffer, index: number, workers: number) {
    if (buffer.byteLength !== SESSION_BALANCE_BYTES) {
      throw new RangeError(
        `session balance buffer is ${buffer.byteLength} bytes, expected ${SESSION_BALANCE_BYTES}`,
      );
    }
    this.#counts = new Int32Array(buffer);
    this.#index = index;
    this.#workers = Math.min(workers, SESSION_BALANCE_SLOTS);
    this.#view = this.#counts.subarray(0, this.#workers);
  }

  /** Marks this worker as taking sessions (its listener is up). */
  open(): void {
    if (this.#index < this.#workers) Atomics.store(this.#counts, this.#index, 0);
  }

  /** Marks this worker as taking no more sessions (draining): others stop deferring to it. */
  shut(): void {
    if (this.#index < this.#workers) Atomics.store(this.#counts, this.#index, NOT_ACCEPTING);
  }

  /**
   * Decides on a new session: true admits it (and counts it until {@linkcode release}), false
   * means send it elsewhere. Workers decide concurrently without a lock: a race can admit one
   * session too many, which the next sessions even out.
   */
  admit(): boolean {
    if (this.#index >= this.#workers) return true;
    const mine = Atomics.load(this.#counts, this.#index);
    if (mine === NOT_ACCEPTING) return true;
    if (shouldRedirect(mine, this.#view)) return false;
    Atomics.add(this.#counts, this.#index, 1);
    return true;
  }

  /** An admitted session ended. */
  release(): void {
    if (this.#index >= this.#workers) return;
    const c = this.#counts;
    while (true) {
      const cur = Atomics.load(c, this.#index);
      if (cur <= 0) return; // shut (or already zero): nothing to take back
      if (Atomics.compareExchange(c, this.#index, cur, cur - 1) === cur) return;
    }
  }

  /** Marks worker `index` of `buffer` as taking no sessions (the main thread, when it died). */
  static shutSlot(buffer: SharedArrayBuffer, index: number): void {
    if (index < SESSION_BALANCE_SLOTS) {
      Atomics.store(new Int32Array(buffer), index, NOT_ACCEPTING);
    }
  }
}
