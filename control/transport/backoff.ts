/**
 * Reconnect delays: exponential growth with jitter, from an injectable random source.
 * @module
 */

/** Reconnect tuning. */
export interface BackoffOptions {
  /** Delay ceiling for the first retry, in milliseconds. */
  readonly baseMs: number;
  /** Largest delay ever returned, in milliseconds. */
  readonly maxMs: number;
}

/** Attempts beyond this no longer double the delay (keeps the exponent finite). */
const MAX_DOUBLINGS = 30;

/**
 * Returns the delay before retry number `attempt` (0-based).
 *
 * "Equal jitter": half the exponential ceiling is fixed, half random. The fixed half keeps a
 * flapping peer from being redialled in a tight loop; the random half keeps nodes that lost a
 * peer at the same moment from reconnecting in lockstep.
 */
export function backoffDelayMs(
  attempt: number,
  opts: BackoffOptions,
  random: () => number,
): number {
  const doublings = Math.min(Math.max(0, Math.floor(attempt)), MAX_DOUBLINGS);
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** doublings);
  const r = Math.min(Math.max(random(), 0), 1);
  return ceiling / 2 + r * (ceiling / 2);
}
