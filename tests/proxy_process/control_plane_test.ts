/**
 * The proxy and the control plane: SIGTERM drains and deregisters; with the control plane
 * stopped traffic goes on, also after the proxy restarts (from the cached catalog).
 */
import { assert, assertEquals } from "../assert.ts";
import {
  type App,
  catalogInstances,
  get,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";
import { meshRequest } from "../tls_fixture.ts";

Deno.test("drain and deregister on SIGTERM; traffic survives the control plane and a restart", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-cp-" });
  let cp = await startControl(dir);
  const apps: App[] = [startApp("svc-1"), startApp("svc-2"), startApp("svc-3")];
  const proxies: ProxyHandle[] = [];
  try {
    for (const [i, a] of apps.entries()) {
      proxies.push(
        await startProxy(dir, {
          node: `vm-${i + 1}`,
          control: [cp.url],
          services: [{ name: "svc", port: a.port }],
        }),
      );
    }
    const callerCfg = {
      node: "vm-caller",
      // A dead URL first: the proxy must fail over to the live one.
      control: ["https://127.0.0.1:9", cp.url],
      upstreams: [{ service: "svc", listen: "127.0.0.1:0" }],
    };
    let caller = await startProxy(dir, callerCfg);
    proxies.push(caller);
    await waitFor(
      "3 instances registered",
      async () => (await catalogInstances(cp.url, "svc")).length === 3,
    );
    await waitFor(
      "the caller to route",
      async () => (await get(caller.upstreams.svc!)).status === 200,
    );

    await t.step("SIGTERM lets an in-flight request finish, deregisters and exits 0", async () => {
      apps[2]!.delayMs = 800;
      apps[0]!.delayMs = 800;
      apps[1]!.delayMs = 800;
      // Earlier requests through the caller may have hit this app: count only this one.
      apps[2]!.hits = 0;
      // Send straight to vm-3's inbound so the in-flight request is surely on the stopping proxy.
      const inflight = meshRequest(proxies[2]!.inbound, "/", { as: "svc-caller" });
      await waitFor("the request to reach the app", () => apps[2]!.hits > 0);
      const stopping = proxies[2]!.child.stop("SIGTERM");
      const r = await inflight;
      assertEquals(r.status, 200);
      assertEquals(r.body, "svc-3");
      assertEquals((await stopping).code, 0);
      const ids = (await catalogInstances(cp.url, "svc")).map((i) => i.id).sort();
      assertEquals(ids, ["vm-1-svc", "vm-2-svc"]);
      for (const a of apps) a.delayMs = 0;
      proxies.splice(2, 1);
      await waitFor("the caller to drop vm-3", async () => {
        const e = await (await fetch(`http://${caller.admin}/endpoints`)).json() as {
          outbound: { service: string; endpoints: unknown[] }[];
        };
        return e.outbound.find((d) => d.service === "svc")?.endpoints.length === 2;
      });
    });

    await t.step("with the control plane stopped, traffic goes on", async () => {
      assertEquals((await cp.child.stop()).code, 0);
      for (let i = 0; i < 50; i++) assertEquals((await get(caller.upstreams.svc!)).status, 200);
      const ready = await (await fetch(`http://${caller.admin}/ready`)).json();
      assertEquals(ready.ready, true);
    });

    await t.step(
      "a proxy restarted while the control plane is down routes from its cache",
      async () => {
        assertEquals((await caller.child.stop()).code, 0);
        proxies.pop();
        caller = await startProxy(dir, callerCfg);
        proxies.push(caller);
        await caller.child.waitLine(/serving from the cached catalog/);
        apps[0]!.hits = apps[1]!.hits = 0;
        for (let i = 0; i < 20; i++) assertEquals((await get(caller.upstreams.svc!)).status, 200);
        assert(apps[0]!.hits > 0 && apps[1]!.hits > 0, "both cached endpoints get traffic");
        const ready = await (await fetch(`http://${caller.admin}/ready`)).json();
        assertEquals(ready.catalog.source, "cache");
      },
    );

    await t.step("when the control plane returns, the caller switches back to it", async () => {
      const port = Number(new URL(cp.url).port);
      cp = await startControl(dir, "cp-1", port);
      await waitFor("the catalog from the control plane", async () => {
        const ready = await (await fetch(`http://${caller.admin}/ready`)).json();
        return ready.catalog.source === "control";
      }, 30_000);
    });
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
