/** The staleness bound of proxies' stale reads, against a follower whose leader went quiet. */
import assert from "node:assert/strict";
import { createApi, INDEX_HEADER } from "./app.ts";
import type { Principal } from "../auth/mod.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { LAST_CONTACT_HEADER } from "./stale_bound.ts";

const PROXY: Principal = {
  kind: "proxy",
  service: "web",
  spiffeId: "spiffe://skein.test/service/web",
};
const OPERATOR: Principal = { kind: "operator", role: "read", tokenId: "t1" };

function setup(principal: Principal) {
  const backend = new FakeBackend({ leader: false, leaderNode: "cp-2" });
  const app = createApi(backend, { maxStaleMs: 5_000, authorize: () => principal });
  const call = async (path: string, signal?: AbortSignal) => {
    const res = await app.request(path, { signal });
    const json = await res.json();
    return { status: res.status, json, headers: res.headers };
  };
  return { backend, call };
}

Deno.test("a follower that heard its leader lately answers a proxy's stale read, saying how lately", async () => {
  const { backend, call } = setup(PROXY);
  backend.lastContactMs = 120;
  const r = await call("/v1/catalog?stale=true");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get(LAST_CONTACT_HEADER), "120");
  assert.ok(r.headers.get(INDEX_HEADER) !== null);
});

Deno.test("past max_stale a proxy's stale read gets 503 stale_state, an operator's still answers", async () => {
  const proxy = setup(PROXY);
  proxy.backend.lastContactMs = 9_000;
  const r = await proxy.call("/v1/catalog?stale=true");
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, "stale_state");
  assert.match(r.json.error.message, /9000 ms ago .*max_stale = 5000 ms/);
  proxy.backend.lastContactMs = null;
  const never = await proxy.call("/v1/services/web?stale=true");
  assert.equal(never.status, 503);
  assert.match(never.json.error.message, /has not heard from a leader/);
  const op = setup(OPERATOR);
  op.backend.lastContactMs = 9_000;
  const o = await op.call("/v1/catalog?stale=true");
  assert.equal(o.status, 200);
  assert.equal(o.headers.get(LAST_CONTACT_HEADER), "9000");
});

Deno.test("a proxy's blocking watch ends with 503 as soon as its node passes the bound", async () => {
  const { backend, call } = setup(PROXY);
  backend.lastContactMs = 100;
  const first = await call("/v1/catalog?stale=true");
  const pending = call(`/v1/catalog?stale=true&index=${first.json.index}&wait=5m`);
  while (backend.watcher.waiting < 1) await new Promise((r) => setTimeout(r, 1));
  backend.lastContactMs = 6_000;
  const r = await pending;
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, "stale_state");
  assert.equal(backend.watcher.waiting, 0);
});

Deno.test("an operator's blocking stale watch is not cut by the bound", async () => {
  const { backend, call } = setup(OPERATOR);
  backend.lastContactMs = 100;
  const first = await call("/v1/catalog?stale=true");
  const ac = new AbortController();
  const pending = call(`/v1/catalog?stale=true&index=${first.json.index}&wait=5m`, ac.signal)
    .catch((e) => e);
  while (backend.watcher.waiting < 1) await new Promise((r) => setTimeout(r, 1));
  backend.lastContactMs = 6_000;
  // Several polls of the bound pass; the watch is still waiting.
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(backend.watcher.waiting, 1);
  ac.abort();
  await pending;
});
