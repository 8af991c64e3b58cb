/**
 * A periodic timer that keeps its phase, as Go's `time.Ticker` (which etcd's Raft tick uses)
 * does: each tick is due at `start + k·period`, a late tick does not push the later ones back,
 * and ticks missed by a stall are skipped, never delivered in a burst. `setInterval` re-arms
 * from when its callback ran instead, so on a busy machine every late tick delayed all that
 * followed: ten 100 ms Raft ticks, one election timeout, took 1.1 s and more, and a cut-off
 * leader was replaced that much later.
 * @module
 */

/** The timers a {@linkcode steadyEvery} runs on (the runtime's, or a test's). */
export interface TimerPort {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer from `setTimeout`. */
  clearTimeout(id: unknown): void;
}

/** The runtime's monotonic clock and timers. */
export const runtimeTimers: TimerPort = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

/**
 * When the tick after the one due at `due` is due, at time `now`: one period later, or, when
 * that is already past, the first time on the same phase that is not (missed ticks skipped).
 */
export function nextDue(due: number, period: number, now: number): number {
  const next = due + period;
  if (next >= now) return next;
  return next + Math.ceil((now - next) / period) * period;
}

/** Calls `fn` every `period` ms on a fixed phase until the returned function is called. */
export function steadyEvery(
  period: number,
  fn: () => void,
  t: TimerPort = runtimeTimers,
): () => void {
  if (!(period > 0)) throw new RangeError(`timer period ${period} ms must be > 0`);
  let due = t.now() + period;
  let stopped = false;
  let id: unknown;
  const run = (): void => {
    if (stopped) return;
    try {
      fn();
    } finally {
      if (!stopped) {
        due = nextDue(due, period, t.now());
        id = t.setTimeout(run, Math.max(0, due - t.now()));
      }
    }
  };
  id = t.setTimeout(run, period);
  return () => {
    stopped = true;
    t.clearTimeout(id);
  };
}
