/**
 * A control node cut off from its peers (but not from the proxies) must not keep a proxy's
 * catalog watch on its frozen state: past `limits.max_stale` it refuses proxies' stale reads,
 * their watches there end, and they move to a node that hears the leader. Skipped unless root
 * with `ip` and `nft`.
 * @module
 */
import { assert } from "../assert.ts";
import { request, waitFor } from "../control_process/cluster.ts";
import { startControlFleet } from "./control_fleet.ts";
import { fleetSupported } from "./netns.ts";
import { type FleetProxy, startFleetProxy, waitEligible } from "./proxy_fleet.ts";

Deno.test({
  name: "a proxy watching a control node cut off from its peers moves to another and sees changes",
  ignore: !fleetSupported(),
  async fn() {
    const cf = await startControlFleet(3, ["w1", "w2", "c1"]);
    const dir = await Deno.makeTempDir({ prefix: "skein-fleet-" });
    const proxies: FleetProxy[] = [];
    let cut: string | null = null;
    try {
      proxies.push(await startFleetProxy(cf, dir, "w1", { service: "web" }));
      const caller = await startFleetProxy(cf, dir, "c1", { calls: "web" });
      proxies.push(caller);
      await waitEligible(caller, "web", 1);
      // Cut off whichever node the caller's watch uses, from the other control nodes only.
      const ready = await (await fetch(`http://${caller.admin}/ready`)).json();
      const watched = cf.cluster.ids().find((id) => cf.cluster.api(id) === ready.control.watch_url);
      assert(watched !== undefined, `watch URL ${ready.control.watch_url} is a control node`);
      cut = watched;
      await cf.fleet.isolate(watched, cf.cluster.ids().filter((id) => id !== watched));
      // The cut node's own view: it stops hearing from a leader (an operator's read shows it).
      await waitFor(`${watched} to lose its leader`, 60_000, async () => {
        const h = await request(`${cf.cluster.api(watched)}/v1/health`);
        const ms = h.json?.last_contact_ms as number | null | undefined;
        return h.status === 200 && (ms === null || (ms ?? 0) > 5_000) ? true : undefined;
      });
      // A change the cut node never sees: a second web instance registers elsewhere.
      const others = cf.cluster.ids().filter((id) => id !== watched);
      proxies.push(await startFleetProxy(cf, dir, "w2", { service: "web", tokenVia: others }));
      await waitEligible(caller, "web", 2);
      const after = await (await fetch(`http://${caller.admin}/ready`)).json();
      assert(after.control.watch_url !== cf.cluster.api(watched), "the watch moved");
    } finally {
      if (cut !== null) await cf.fleet.heal(cut);
      for (const p of proxies) await p.stop();
      await cf.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
