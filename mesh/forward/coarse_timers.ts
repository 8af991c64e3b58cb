/**
 * One-shot timers for per-attempt budgets, checked by a single interval. A `setTimeout` per
 * attempt showed up at about 8% of a busy proxy thread's CPU (each one a timer object and a
 * runtime call to arm and another to disarm). Here a timer is an object its owner keeps and
 * re-arms: arming writes a deadline and (only if it is not pending already) inserts it into a
 * set; disarming writes a field and leaves the set alone, the next check drops it. So a busy
 * connection's attempts allocate nothing and touch the set about once per check interval
 * instead of twice per request. The price is precision: a timer fires up to one resolution step
 * late.
 * @module
 */

/** How often pending timers are checked, in ms: the most a timer fires late. */
export const DEFAULT_TIMER_RESOLUTION_MS = 5;

/** A re-armable timer: its owner implements `fire` and keeps the object for its lifetime. */
export interface CoarseTimer {
  /** When it fires, on the clock the timers were created with; Infinity when disarmed. */
  due: number;
  /** Whether it sits in a timer set now (armed, or disarmed and not yet dropped). */
  queued: boolean;
  /** What runs when it fires. */
  fire(): void;
}

/** A set of coarse one-shot timers sharing one interval (armed only while any is queued). */
export class CoarseTimers {
  readonly #queued = new Set<CoarseTimer>();
  readonly #resolutionMs: number;
  readonly #now: () => number;
  #interval: ReturnType<typeof setInterval> | null = null;

  /** Creates the set; `now` is a millisecond clock (tests inject one and call `check`). */
  constructor(resolutionMs = DEFAULT_TIMER_RESOLUTION_MS, now = () => performance.now()) {
    this.#resolutionMs = resolutionMs;
    this.#now = now;
  }

  /** Timers armed now. */
  get size(): number {
    let n = 0;
    for (const t of this.#queued) if (t.due !== Infinity) n++;
    return n;
  }

  /** Makes `t` fire once, `ms` after `from` (default: now), unless disarmed first. */
  arm(t: CoarseTimer, ms: number, from = this.#now()): void {
    t.due = from + ms;
    if (t.queued) return;
    t.queued = true;
    this.#queued.add(t);
    if (this.#interval === null) {
      this.#interval = setInterval(() => this.check(), this.#resolutionMs);
      Deno.unrefTimer(this.#interval);
    }
  }

  /** Stops `t` from firing (a disarmed or never armed timer is left as it is). */
  disarm(t: CoarseTimer): void {
    t.due = Infinity;
  }

  /** Fires every timer that is due and drops disarmed ones; the interval calls this, tests may too. */
  check(): void {
    const now = this.#now();
    for (const t of this.#queued) {
      if (t.due > now) {
        if (t.due !== Infinity) continue;
      } else {
        t.due = Infinity;
        try {
          t.fire();
        } catch {
          // A timer's callback failing must not stop the others.
        }
        // The callback may have re-armed it.
        if (t.due !== Infinity) continue;
      }
      t.queued = false;
      this.#queued.delete(t);
    }
    // Stop when nothing is queued, so an idle proxy has no interval running (and none keeps tests
    // alive).
    if (this.#queued.size === 0 && this.#interval !== null) {
      clearInterval(this.#interval);
      this.#interval = null;
    }
  }

  /** Drops every timer and stops the interval. */
  close(): void {
    for (const t of this.#queued) {
      t.due = Infinity;
      t.queued = false;
    }
    this.#queued.clear();
    if (this.#interval !== null) clearInterval(this.#interval);
    this.#interval = null;
  }
}
