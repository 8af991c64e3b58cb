import assert from "node:assert/strict";
import { clockSkewProblem, MAX_PEER_CLOCK_SKEW_MS } from "./clock_skew.ts";

Deno.test("clockSkewProblem() accepts clocks within the bound and names the gap beyond it", () => {
  const now = 1_765_000_000_000;
  assert.equal(clockSkewProblem("cp-2", now + MAX_PEER_CLOCK_SKEW_MS, now), null);
  assert.equal(clockSkewProblem("cp-2", now - MAX_PEER_CLOCK_SKEW_MS, now), null);
  const ahead = clockSkewProblem("cp-2", now + 45_000, now);
  assert.match(ahead ?? "", /peer cp-2's clock is 45\.0 s ahead of this node's \(at most 30 s/);
  const behind = clockSkewProblem("cp-2", now - 90_500, now, 10_000);
  assert.match(behind ?? "", /90\.5 s behind this node's \(at most 10 s allowed\): set the clocks/);
});
