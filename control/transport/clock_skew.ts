/**
 * The clock check at the Raft hello: control nodes whose clocks are far apart issue each other
 * certificates that look not yet valid or expired, and a leader's timestamps (rotation phases,
 * token expiry, leases) mean different moments on each node, so a peer too far off is refused
 * with a line that says which clock is ahead and by how much.
 * @module
 */

/** Largest accepted difference between a peer's clock (as its hello says) and this node's. */
export const MAX_PEER_CLOCK_SKEW_MS = 30_000;

/**
 * Why a peer whose hello was sent at `peerSentAtMs` (its clock) and read at `nowMs` (this
 * node's clock) is refused, or null when the clocks are within `boundMs`. The one-way delay
 * counts as skew; on a network where it nears the bound, Raft itself would not work.
 */
export function clockSkewProblem(
  peer: string,
  peerSentAtMs: number,
  nowMs: number,
  boundMs: number = MAX_PEER_CLOCK_SKEW_MS,
): string | null {
  const skew = peerSentAtMs - nowMs;
  if (Math.abs(skew) <= boundMs) return null;
  const secs = (Math.abs(skew) / 1000).toFixed(1);
  const way = skew > 0 ? "ahead of" : "behind";
  return `peer ${peer}'s clock is ${secs} s ${way} this node's (at most ${
    boundMs / 1000
  } s allowed): set the clocks of both machines (NTP) before it can join`;
}
