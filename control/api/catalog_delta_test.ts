/** Blocking catalog queries answered with deltas through the API, and whole for old proxies. */
import assert from "node:assert/strict";
import { createApi, INDEX_HEADER } from "./app.ts";
import { CATALOG_DELTA_HEADER } from "./catalog_feed.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

function setup() {
  const backend = new FakeBackend();
  const app = createApi(backend, {});
  const call = async (method: string, path: string, body?: unknown, headers: HeadersInit = {}) => {
    const res = await app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      json: JSON.parse(text) as Json,
      bytes: text.length,
      headers: res.headers,
    };
  };
  return { backend, app, call };
}

const DELTA = { [CATALOG_DELTA_HEADER]: "1" };

async function registerMany(call: ReturnType<typeof setup>["call"], n: number) {
  for (let i = 0; i < n; i++) {
    const r = await call("PUT", `/v1/services/svc-${i % 20}/instances/i${i}`, {
      address: `10.0.${i >> 8}.${i & 255}`,
      port: 8080,
    });
    assert.ok(r.status < 300, JSON.stringify(r.json));
  }
}

Deno.test("a woken watcher asking for a delta gets only the changed service, not the catalog", async () => {
  const { call, backend, app } = setup();
  await registerMany(call, 200);
  // The watcher's first answer is whole: that is the index this node served it.
  const first = await call("GET", "/v1/catalog");
  const idx = first.json.index as number;
  const pending = call("GET", `/v1/catalog?index=${idx}&wait=5m`, undefined, DELTA);
  const old = call("GET", `/v1/catalog?index=${idx}&wait=5m`);
  while (backend.watcher.waiting < 2) await new Promise((r) => setTimeout(r, 1));
  await call("PUT", "/v1/services/new/instances/n1", { address: "10.9.9.9", port: 80 });
  const r = await pending;
  assert.equal(r.status, 200);
  assert.ok(r.json.index > idx);
  assert.equal(r.headers.get(INDEX_HEADER), String(r.json.index));
  assert.equal(r.json.delta.from, idx);
  assert.deepEqual(Object.keys(r.json.delta.services), ["new"]);
  assert.deepEqual(r.json.delta.removed, []);
  assert.equal(r.json.services, undefined);
  assert.ok(r.bytes * 20 < first.bytes, `delta ${r.bytes} bytes, catalog ${first.bytes}`);
  // A proxy that does not ask (an older one) still gets the whole catalog.
  const whole = await old;
  assert.equal(whole.json.index, r.json.index);
  assert.equal(Object.keys(whole.json.services).length, 21);
  // A timeout with nothing new is an empty delta.
  const quiet = await call("GET", `/v1/catalog?index=${r.json.index}&wait=10ms`, undefined, DELTA);
  assert.deepEqual(quiet.json, {
    index: r.json.index,
    delta: { from: r.json.index, services: {}, removed: [] },
  });
  // Deregistering the last instance of a service names it as removed.
  const gone = call("GET", `/v1/catalog?index=${r.json.index}&wait=5m`, undefined, DELTA);
  while (backend.watcher.waiting < 1) await new Promise((r) => setTimeout(r, 1));
  await call("DELETE", "/v1/services/new/instances/n1");
  assert.deepEqual((await gone).json.delta.removed, ["new"]);
  const m = await (await app.request("/metrics")).text();
  assert.match(m, /skein_control_catalog_answers_total\{kind="delta"\} 3/);
});

Deno.test("a delta for an index this node never served is answered whole", async () => {
  const { call } = setup();
  await registerMany(call, 3);
  const r = await call("GET", `/v1/catalog?index=1&wait=10ms`, undefined, DELTA);
  assert.equal(r.status, 200);
  assert.equal(r.json.delta, undefined);
  assert.equal(Object.keys(r.json.services).length, 3);
  assert.equal(r.json.index, 3);
});
