import { assert, assertEquals } from "../../tests/assert.ts";
import { STATS_BUCKETS } from "../../common/heartbeat_stats.ts";
import { createApi } from "../api/app.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { DashboardWindow } from "./window.ts";

const HB = { instances: [{ service: "billing", id: "billing-1" }] };
const STATS = {
  node: "vm-billing",
  edges: [],
  denials: [],
  certs: [{ service: "billing", not_after: 123 }],
};

Deno.test("a heartbeat's dashboard report is kept; a bad one never fails the heartbeat", async () => {
  const window = new DashboardWindow();
  const backend = new FakeBackend();
  const app = createApi(backend, { dashboard: window });
  const put = (body: unknown) =>
    app.request("/v1/heartbeat", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const bad = await put({ ...HB, stats: { node: "x", edges: "lots" } });
  assertEquals(bad.status, 200);
  await bad.body?.cancel();
  assertEquals(window.certs(), []);
  const huge = await put({
    ...HB,
    stats: {
      ...STATS,
      edges: Array.from({ length: 300 }, () => ({
        source: "a",
        destination: "b",
        side: "out",
        requests: 1,
        errors: 0,
        buckets: new Array(STATS_BUCKETS.length + 1).fill(0),
        inflight: 0,
        rejections: 0,
      })),
    },
  });
  assertEquals(huge.status, 200);
  await huge.body?.cancel();
  assertEquals(window.certs(), []);
  const ok = await put({ ...HB, stats: STATS });
  assertEquals(ok.status, 200);
  await ok.body?.cancel();
  assertEquals(window.certs(), [{ node: "vm-billing", service: "billing", not_after: 123 }]);
  // Registered on vm-billing: a report naming another node is not taken.
  backend.applyDirect({
    type: "register_instance",
    instance: {
      id: "billing-1",
      service: "billing",
      node: "vm-billing",
      address: "10.0.0.9",
      port: 15443,
      zone: "",
      version: "",
      weight: 1,
      tags: [],
      capabilities: [],
      meta: {},
      health: "passing",
    },
  });
  const spoof = await put({ ...HB, stats: { ...STATS, node: "vm-ledger" } });
  assertEquals(spoof.status, 200);
  await spoof.body?.cancel();
  assertEquals(window.certs().length, 1);
  const again = await put({
    ...HB,
    stats: { ...STATS, certs: [{ service: "billing", not_after: 7 }] },
  });
  await again.body?.cancel();
  assertEquals(window.certs()[0]!.not_after, 7);
  const data = await (await app.request("/v1/dashboard")).json();
  assertEquals(data.certs.proxies, window.certs());
  const page = await app.request("/ui/");
  assert((page.headers.get("content-security-policy") ?? "").includes("default-src 'self'"));
  assertEquals(page.headers.get("content-type"), "text/html; charset=utf-8");
  await page.body?.cancel();
  const redirect = await app.request("/ui");
  assertEquals(redirect.status, 301);
});
