/**
 * A control follower whose links drop a share of packets at random (nftables `numgen random`):
 * the cluster keeps acknowledging writes through the healthy nodes, some through the lossy one,
 * and loses none. Skipped unless root with `ip` and `nft`.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { request, sleep, waitFor } from "../control_process/cluster.ts";
import { startControlFleet } from "./control_fleet.ts";
import { fleetSupported } from "./netns.ts";

/** Packets dropped on the lossy follower's links, in %. */
const LOSS_PERCENT = 20;

Deno.test({
  name: `a follower with ${LOSS_PERCENT}% packet loss: writes go on, none lost`,
  ignore: !fleetSupported(),
  async fn() {
    const cf = await startControlFleet(3);
    const c = cf.cluster;
    try {
      const leader = await c.waitLeader(30_000);
      const lossy = c.ids().find((id) => id !== leader)!;
      await cf.fleet.lossy(lossy, LOSS_PERCENT);
      const acked: string[] = [];
      const ackedVia = new Map<string, number>();
      let stop = false;
      const loops = c.ids().map(async (via) => {
        for (let k = 0; !stop; k++) {
          const id = `${via}-${k}`;
          const r = await request(
            `${c.api(via)}/v1/services/lossy/instances/${id}`,
            "PUT",
            { address: "10.1.0.1", port: 8080 },
            5_000,
          );
          if (r.status === 200 || r.status === 201) {
            acked.push(id);
            ackedVia.set(via, (ackedVia.get(via) ?? 0) + 1);
          } else {
            await sleep(20);
          }
        }
      });
      try {
        // Enough acknowledgements through each healthy node, and some through the lossy one
        // (its HTTPS and forwarding ride the lossy link: most of its writes time out).
        await waitFor(
          () => `writes acknowledged through every node (${JSON.stringify([...ackedVia])})`,
          60_000,
          () =>
            c.ids().every((id) => (ackedVia.get(id) ?? 0) >= (id === lossy ? 1 : 20))
              ? true
              : undefined,
        );
      } finally {
        stop = true;
        await Promise.all(loops);
        await cf.fleet.heal(lossy);
      }
      await c.waitConverged(30_000);
      for (const id of c.ids()) {
        const have = await c.staleInstances(id, "lossy");
        assertEquals(
          acked.filter((x) => !have?.has(x)),
          [],
          `acknowledged writes missing on ${id}`,
        );
      }
      console.log(
        `fleet: lossy follower ${lossy}: ${JSON.stringify(Object.fromEntries(ackedVia))}`,
      );
      assert(acked.length >= 41);
    } finally {
      await cf.destroy();
    }
  },
});
