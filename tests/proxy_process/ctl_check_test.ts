/**
 * `skein ctl check` with a real control node and proxy: it finds a Route that sends traffic to
 * a version with no instance, a proxy whose certificate expired, and a proxy setting that this
 * version does not enforce, each with its fix.
 */
import { assert, assertEquals } from "../assert.ts";
import { runSkein } from "../skein_cli.ts";
import { meshClient, sharedSeed, testFetch } from "../tls_fixture.ts";
import { startApp, startControl, startProxy, waitFor } from "./helpers.ts";
import { VERSION } from "../../cmd/version.ts";

Deno.test("ctl check finds a missing canary version, an expired proxy certificate and unenforced settings", async () => {
  const dir = await Deno.makeTempDir();
  const app = startApp("ledger");
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const cp = await startControl(dir);
    stops.push(() => cp.child.stop());
    const admin = { authorization: `Bearer ${cp.token}`, "content-type": "application/json" };
    // Accepted but not acted on by this version: the proxy reports it.
    // (A RateLimit for an ExternalService: no proxy fronts an external host to keep it.)
    const unenforcedPut = await testFetch(`${cp.url}/v1/resources`, {
      method: "PUT",
      headers: admin,
      body: JSON.stringify([
        { kind: "ExternalService", name: "stripe", hosts: ["api.stripe.com:443"] },
        { kind: "RateLimit", service: "stripe", requests_per_second: 5, burst: 5 },
      ]),
    });
    assertEquals(unenforcedPut.status, 200, await unenforcedPut.text());
    const proxy = await startProxy(dir, {
      node: "vm-1",
      control: [cp.url],
      services: [{ name: "ledger", port: app.port, version: "v1" }],
    });
    stops.push(() => proxy.child.stop());
    // Liveness beside readiness on the admin listener.
    const live = await fetch(`http://${proxy.admin}/live`);
    assertEquals(live.status, 200);
    const liveBody = await live.json();
    assertEquals([liveBody.live, liveBody.worker_restarts], [true, 0]);
    await waitFor("vm-1's report", async () => {
      const r = await testFetch(`${cp.url}/v1/proxies`, { headers: admin });
      const body = await r.json();
      return body.proxies?.some((p: { node: string; unenforced: string[] }) =>
        p.node === "vm-1" && p.unenforced.includes("RateLimit/stripe (for an ExternalService)")
      );
    });
    const check = () =>
      runSkein(["ctl", "check", "--control", cp.url, "--token-file", `${dir}/cp-1.token`]);
    const first = await check();
    assertEquals(first.code, 1, first.stdout + first.stderr);
    assert(
      first.stdout.includes(
        "proxy vm-1 (ledger) accepts but does not enforce: RateLimit/stripe (for an ExternalService)",
      ),
    );
    assert(!first.stdout.includes("Route/"), first.stdout);

    // A 5% canary of v2, which nobody runs.
    const put = await testFetch(`${cp.url}/v1/resources`, {
      method: "PUT",
      headers: admin,
      body: JSON.stringify({
        kind: "Route",
        service: "ledger",
        rules: [{ backends: [{ version: "v1", weight: 95 }, { version: "v2", weight: 5 }] }],
      }),
    });
    assertEquals(put.status, 200, await put.text());

    // A proxy for billing reports (with its heartbeat, over mTLS as billing) a certificate that
    // expired an hour ago: the shape a proxy whose renewals kept failing reports.
    const seed = await sharedSeed();
    const billing = await meshClient("billing");
    const client = Deno.createHttpClient({
      caCerts: [seed.certPem],
      cert: billing.certPem,
      key: billing.keyPem,
    });
    try {
      const reg = await fetch(`${cp.url}/v1/services/billing/instances/b1`, {
        method: "PUT",
        client,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ address: "127.0.0.1", port: 9, node: "vm-9" }),
      });
      assert(reg.status < 300, await reg.text());
      const hb = await fetch(`${cp.url}/v1/heartbeat`, {
        method: "PUT",
        client,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          instances: [{ service: "billing", id: "b1" }],
          proxy: {
            node: "vm-9",
            version: VERSION,
            cert_not_after: Date.now() - 3600_000,
            unenforced: [],
          },
        }),
      });
      assertEquals(hb.status, 200, await hb.text());
    } finally {
      client.close();
    }

    const r = await check();
    assertEquals(r.code, 1, r.stdout + r.stderr);
    const lines = r.stdout.split("\n");
    const canary = lines.findIndex((l) =>
      l.includes("Route/ledger rules[0] sends 5% to version v2")
    );
    assert(canary >= 0, r.stdout);
    assert(
      lines[canary]!.includes("fix: start instances of ledger with version: v2"),
      r.stdout,
    );
    const expired = lines.findIndex((l) =>
      l.includes("proxy vm-9 (billing) reported a certificate that expired")
    );
    assert(expired >= 0, r.stdout);
    assert(lines[expired]!.includes("skein ctl tokens create --service billing"), r.stdout);
    // vm-1 itself is fine apart from its unenforced setting.
    assert(!r.stdout.includes("proxy vm-1 (ledger) reported"), r.stdout);
    assert(!r.stdout.includes("control node"), r.stdout);
  } finally {
    for (const s of stops.reverse()) await s();
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
