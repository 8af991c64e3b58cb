/**
 * A caller's proxy cut off from every control node (nftables on its host; it still reaches the
 * web host): it keeps serving, and restarted while still cut off it serves from its cached
 * catalog. Skipped unless root with `ip` and `nft`.
 * @module
 */
import { assertEquals } from "../assert.ts";
import { startControlFleet } from "./control_fleet.ts";
import { fleetSupported } from "./netns.ts";
import { type FleetProxy, startFleetProxy, waitEligible } from "./proxy_fleet.ts";

/** GETs `n` times through `addr`; returns the statuses and bodies that were not `200 w1`. */
async function getMany(addr: string, n: number): Promise<string[]> {
  const bad: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const res = await fetch(`http://${addr}/`, { signal: AbortSignal.timeout(30_000) });
      const got = `${res.status} ${await res.text()}`;
      if (got !== "200 w1") bad.push(got);
    } catch (e) {
      bad.push((e as Error).message);
    }
  }
  return bad;
}

Deno.test({
  name:
    "a proxy cut off from the control plane keeps serving, and after a restart serves from its cache",
  ignore: !fleetSupported(),
  async fn() {
    const cf = await startControlFleet(3, ["w1", "c1"]);
    const dir = await Deno.makeTempDir({ prefix: "skein-fleet-" });
    const proxies: FleetProxy[] = [];
    try {
      proxies.push(await startFleetProxy(cf, dir, "w1", { service: "web" }));
      let caller = await startFleetProxy(cf, dir, "c1", { calls: "web" });
      proxies.push(caller);
      await waitEligible(caller, "web", 1);
      assertEquals(await getMany(caller.upstreams.web!, 10), []);
      await cf.fleet.isolate("c1", cf.cluster.ids());
      assertEquals(await getMany(caller.upstreams.web!, 20), [], "cut off from control");
      await caller.stop();
      proxies.pop();
      caller = await startFleetProxy(cf, dir, "c1", { calls: "web" });
      proxies.push(caller);
      await caller.child.waitLine(/serving from the cached catalog/, 60_000);
      assertEquals(
        await getMany(caller.upstreams.web!, 20),
        [],
        "restarted while cut off from control",
      );
      const ready = await (await fetch(`http://${caller.admin}/ready`)).json();
      assertEquals(ready.catalog.source, "cache");
    } finally {
      await cf.fleet.heal("c1");
      for (const p of proxies) await p.stop();
      await cf.destroy();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
