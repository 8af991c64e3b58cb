/**
 * The control plane on hosts of its own (network namespaces on a bridge, faults by nftables):
 * a leader cut off from its peers is replaced, the cut side acknowledges nothing, and nothing
 * acknowledged is lost. Skipped unless root with `ip` and `nft` (CI runs as root).
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { leaderIsolationRound, startControlFleet } from "./control_fleet.ts";
import { fleetSupported } from "./netns.ts";

Deno.test({
  name: "a leader isolated by nftables is replaced; no split-brain acknowledgement, nothing lost",
  ignore: !fleetSupported(),
  async fn() {
    const cf = await startControlFleet(3);
    try {
      const r = await leaderIsolationRound(cf, 1);
      console.log(`fleet: leader isolation: ${JSON.stringify({ ...r, lost: r.lost.length })}`);
      assert(r.failoverMs !== null, "no survivor acknowledged a write");
      assertEquals(r.isolatedAcks, 0, "the isolated leader acknowledged writes sent after the cut");
      assertEquals(r.lost, [], "acknowledged writes were lost");
      assert(r.acked > 20);
    } finally {
      await cf.destroy();
    }
  },
});
