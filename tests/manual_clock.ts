/**
 * A clock tests move by hand, for the balance and resilience tests whose code takes `now`.
 * @module
 */

/** A clock tests move by hand. */
export function manualClock(startMs = 0): { now: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => (t += ms) };
}
