/**
 * One-shot timers for per-attempt budgets, checked by a single interval. A `setTimeout` per
 * attempt showed up at about 8% of a busy proxy thread's CPU (each one a timer object and a
 * runtime call to arm and another to disarm); here arming and disarming are a set insert and
 * delete. The price is precision: a timer fires up to one resolution step late.
 * @module
 */

/** How often pending timers are checked, in ms: the most a timer fires late. */
export const DEFAULT_TIMER_RESOLUTION_MS = 5;

/** A pending timer; pass it to {@linkcode CoarseTimers.cancel}. */
export interface CoarseTimer {
  /** When it fires, on the clock the timers were created with. */
  readonly due: number;
  /** What runs when it fires. */
  readonly fn: () => void;
}

/** A set of coarse one-shot timers sharing one interval (armed only while any is pending). */
export class CoarseTimers {
  readonly #pending = new Set<CoarseTimer>();
  readonly #resolutionMs: number;
  readonly #now: () => number;
  #interval: ReturnType<typeof setInterval> | null = null;

  /** Creates the set; `now` is a millisecond clock (tests inject one and call `check`). */
  constructor(resolutionMs = DEFAULT_TIMER_RESOLUTION_MS, now = () => performance.now()) {
    this.#resolutionMs = resolutionMs;
    this.#now = now;
  }

  /** Timers pending now. */
  get size(): number {
    return this.#pending.size;
  }

  /** Runs `fn` once, `ms` after `from` (default: now), unless cancelled first. */
  start(ms: number, fn: () => void, from = this.#now()): CoarseTimer {
    const t: CoarseTimer = { due: from + ms, fn };
    this.#pending.add(t);
    if (this.#interval === null) {
      this.#interval = setInterval(() => this.check(), this.#resolutionMs);
      Deno.unrefTimer(this.#interval);
    }
    return t;
  }

  /** Forgets `t` (undefined and already fired timers are ignored). */
  cancel(t: CoarseTimer | undefined): void {
    if (t === undefined) return;
    this.#pending.delete(t);
  }

  /** Fires every timer that is due; the interval calls this, tests may too. */
  check(): void {
    const now = this.#now();
    for (const t of this.#pending) {
      if (t.due > now) continue;
      this.#pending.delete(t);
      try {
        t.fn();
      } catch {
        // A timer's callback failing must not stop the others.
      }
    }
    // Disarm when idle, so an idle proxy has no interval running (and none keeps tests alive).
    if (this.#pending.size === 0 && this.#interval !== null) {
      clearInterval(this.#interval);
      this.#interval = null;
    }
  }

  /** Drops every pending timer and stops the interval. */
  close(): void {
    this.#pending.clear();
    if (this.#interval !== null) clearInterval(this.#interval);
    this.#interval = null;
  }
}
