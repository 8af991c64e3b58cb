/**
 * One-shot timers for per-attempt budgets, checked by a single interval. A `setTimeout` per
 * attempt showed up at about 8% of a busy proxy thread's CPU (each one a timer object and a
 * runtime call to arm and another to disarm). Here a timer is an object its owner keeps and
 * re-arms: arming writes a deadline and (only if it is not pending already) inserts it into a
 * set; disarming writes a field and leaves the set alone, the next check drops it. So a busy
 * connection's attempts allocate nothing and touch the set about once per check interval
 * instead of twice per request.
 *
 * The price is precision: a timer fires up to one check period late. The period follows the
 * shortest budget armed: a tenth of it, between {@linkcode MIN_TIMER_STEP_MS} and
 * {@linkcode MAX_TIMER_STEP_MS}. It is not fixed at the finest step because the check itself
 * costs: on the mTLS benchmark pair a 5 ms period (the default 15 s route timeout needs no
 * more than 50 ms) took about 1.4 µs more CPU per call than a 50 ms one, measured A/B in
 * alternating runs; a 1 ms period took 2.7 µs more.
 * @module
 */

/** The finest check period, in ms: the most a timer with a budget up to 50 ms fires late. */
export const MIN_TIMER_STEP_MS = 5;
/** The coarsest check period, in ms: the most any timer fires late. */
export const MAX_TIMER_STEP_MS = 50;

/** The check period a timer of `ms` asks for: a tenth of it, within the bounds above. */
export function timerStep(ms: number): number {
  return Math.min(MAX_TIMER_STEP_MS, Math.max(MIN_TIMER_STEP_MS, ms / 10));
}

/** A re-armable timer: its owner implements `fire` and keeps the object for its lifetime. */
export interface CoarseTimer {
  /** When it fires, on the clock the timers were created with; Infinity when disarmed. */
  due: number;
  /** Whether it sits in a timer set now (armed, or disarmed and not yet dropped). */
  queued: boolean;
  /** The check period its current budget asks for (see {@linkcode timerStep}). */
  step: number;
  /** What runs when it fires. */
  fire(): void;
}

/** A set of coarse one-shot timers sharing one interval (running only while any is queued). */
export class CoarseTimers {
  readonly #queued = new Set<CoarseTimer>();
  readonly #now: () => number;
  #interval: ReturnType<typeof setInterval> | null = null;
  #period = Infinity;

  /** Creates the set; `now` is a millisecond clock (tests inject one and call `check`). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** The interval's period now, in ms (Infinity when it is not running). */
  get period(): number {
    return this.#period;
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
    const step = t.step = timerStep(ms);
    if (!t.queued) {
      t.queued = true;
      this.#queued.add(t);
    }
    if (step < this.#period) this.#run(step);
  }

  /** (Re)starts the interval with period `ms`. */
  #run(ms: number): void {
    if (this.#interval !== null) clearInterval(this.#interval);
    this.#interval = setInterval(() => this.check(), ms);
    Deno.unrefTimer(this.#interval);
    this.#period = ms;
  }

  /** Stops `t` from firing (a disarmed or never armed timer is left as it is). */
  disarm(t: CoarseTimer): void {
    t.due = Infinity;
  }

  /** Fires every timer that is due and drops disarmed ones; the interval calls this, tests may too. */
  check(): void {
    const now = this.#now();
    let finest = Infinity;
    for (const t of this.#queued) {
      if (t.due <= now) {
        t.due = Infinity;
        try {
          t.fire();
        } catch {
          // A timer's callback failing must not stop the others.
        }
      }
      // Still armed (not due yet, or re-armed by its callback): it stays, and its step counts.
      if (t.due !== Infinity) {
        if (t.step < finest) finest = t.step;
        continue;
      }
      t.queued = false;
      this.#queued.delete(t);
    }
    if (this.#queued.size === 0) {
      // Nothing queued: stop, so an idle proxy has no interval running (and none keeps tests
      // alive).
      this.#stop();
    } else if (finest !== Infinity && finest > this.#period) {
      // The timers that needed a finer period are gone: check less often.
      this.#run(finest);
    }
  }

  #stop(): void {
    if (this.#interval !== null) clearInterval(this.#interval);
    this.#interval = null;
    this.#period = Infinity;
  }

  /** Drops every timer and stops the interval. */
  close(): void {
    for (const t of this.#queued) {
      t.due = Infinity;
      t.queued = false;
    }
    this.#queued.clear();
    this.#stop();
  }
}
