/**
 * Test helpers shared by the balance and resilience tests.
 * @module
 */

export { seededRandom } from "../../tests/seeded_random.ts";

/** A clock tests move by hand. */
export function manualClock(startMs = 0): { now: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => (t += ms) };
}
