/**
 * An asymmetric fault: the leader hears nothing from its peers while its own messages still
 * reach them. It must give up leadership (check-quorum), a follower must take over, the old
 * leader must acknowledge nothing sent to it after the fault, and nothing acknowledged may be
 * lost. Skipped unless root with `ip` and `nft`.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { request, sleep, waitFor } from "../control_process/cluster.ts";
import { startControlFleet } from "./control_fleet.ts";
import { fleetSupported } from "./netns.ts";

Deno.test({
  name:
    "a leader that cannot hear its peers (one-way fault) is replaced; it acknowledges nothing after, nothing is lost",
  ignore: !fleetSupported(),
  async fn() {
    const cf = await startControlFleet(3);
    const c = cf.cluster;
    try {
      const leader = await c.waitLeader(30_000);
      const others = c.ids().filter((id) => id !== leader);
      const acked: { id: string; via: string; afterFault: boolean }[] = [];
      let faultOn = false;
      let stop = false;
      const loops = c.ids().map(async (via) => {
        for (let k = 0; !stop; k++) {
          const afterFault = faultOn;
          const id = `${via}-${k}`;
          const r = await request(
            `${c.api(via)}/v1/services/oneway/instances/${id}`,
            "PUT",
            { address: "10.1.0.1", port: 8080 },
            2_000,
          );
          if (r.status === 200 || r.status === 201) acked.push({ id, via, afterFault });
          else await sleep(20);
        }
      });
      try {
        await waitFor(
          "writes before the fault",
          30_000,
          () => acked.length >= 20 ? true : undefined,
        );
        await cf.fleet.deafTo(leader, others);
        faultOn = true;
        await waitFor(
          "a survivor to acknowledge a write sent after the fault",
          30_000,
          () => acked.some((a) => a.afterFault && a.via !== leader) ? true : undefined,
        );
      } finally {
        stop = true;
        await Promise.all(loops);
        await cf.fleet.heal(leader);
      }
      await c.waitLeader(30_000);
      await c.waitConverged(30_000);
      assertEquals(
        acked.filter((a) => a.afterFault && a.via === leader).map((a) => a.id),
        [],
        "the deaf leader acknowledged writes sent to it after the fault",
      );
      for (const id of c.ids()) {
        const have = await c.staleInstances(id, "oneway");
        assertEquals(
          acked.filter((a) => !have?.has(a.id)).map((a) => a.id),
          [],
          `acknowledged writes missing on ${id}`,
        );
      }
      assert(acked.length > 20);
    } finally {
      await cf.destroy();
    }
  },
});
