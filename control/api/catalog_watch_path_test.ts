/** Proxies' blocking catalog watches over real mTLS, held on the lean watch path. */
import assert from "node:assert/strict";
import { createCa, issueCertificate, trustBundlePem } from "../ca/mod.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { createControlApi, INDEX_HEADER } from "./app.ts";
import { CATALOG_DELTA_HEADER } from "./catalog_feed.ts";
import { parseWatchQuery } from "./catalog_watch_path.ts";
import { serveApiHttps } from "./https_server.ts";
import { LAST_CONTACT_HEADER } from "./stale_bound.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function setup() {
  const now = Date.now();
  const ca = await createCa({ trustDomain: "skein.local", now });
  const server = await issueCertificate(ca, {
    identity: { kind: "control", node: "cp-1" },
    extraSans: { ip: ["127.0.0.1"] },
    now,
  });
  const proxy = await issueCertificate(ca, { identity: { kind: "service", service: "web" }, now });
  const caPem = trustBundlePem(ca);
  // A follower: proxies' stale reads are held to its staleness bound.
  const backend = new FakeBackend({ leader: false, leaderNode: "cp-2" });
  const { app, watchPath } = createControlApi(backend, { maxStaleMs: 5_000 });
  const srv = await serveApiHttps({
    hostname: "127.0.0.1",
    port: 0,
    material: { certPem: server.certPem, keyPem: server.keyPem, caPem },
    trustDomain: "skein.local",
    handler: (req, info) => app.fetch(req, info),
    intercept: (req, res, info) => watchPath.intercept(req, res, info),
  });
  const clients: Deno.HttpClient[] = [];
  const client = (cert: boolean) => {
    const c = Deno.createHttpClient({
      caCerts: [caPem],
      ...(cert ? { cert: proxy.certPem, key: proxy.keyPem } : {}),
    });
    clients.push(c);
    return c;
  };
  const base = `https://127.0.0.1:${srv.port}`;
  const get = async (path: string, o: { cert?: boolean; signal?: AbortSignal } = {}) => {
    const res = await fetch(base + path, {
      client: client(o.cert ?? true),
      headers: { [CATALOG_DELTA_HEADER]: "1" },
      ...(o.signal ? { signal: o.signal } : {}),
    });
    return { status: res.status, headers: res.headers, json: await res.json() as Json };
  };
  // Changes go straight to the app, as if this node were leader for the moment (a follower
  // would forward them); the fake backend's writes need no TLS.
  const put = async (service: string, id: string) => {
    backend.leader = true;
    const r = await app.request(`/v1/services/${service}/instances/${id}`, {
      method: "PUT",
      body: JSON.stringify({ address: "10.9.9.9", port: 80 }),
    });
    backend.leader = false;
    assert.ok(r.status < 300, await r.text());
  };
  const close = async () => {
    watchPath.close();
    await srv.shutdown(1000);
    for (const c of clients) c.close();
  };
  return { backend, app, watchPath, get, put, close };
}

Deno.test("proxies' watches wait on the lean path, and a change wakes them all with one delta", async () => {
  const t = await setup();
  try {
    for (let i = 0; i < 30; i++) await t.put(`svc-${i % 6}`, `i${i}`);
    const first = await t.get("/v1/catalog?stale=true");
    const idx = first.json.index as number;
    const watches = Array.from(
      { length: 3 },
      () => t.get(`/v1/catalog?stale=true&index=${idx}&wait=5m`),
    );
    await until("three held watches", () => t.watchPath.held === 3);
    // None of them took a promise and a timer on the node's index watcher.
    assert.equal(t.backend.watcher.waiting, 0);
    await t.put("new", "n1");
    for (const r of await Promise.all(watches)) {
      assert.equal(r.status, 200);
      assert.ok(r.json.index > idx);
      assert.equal(r.headers.get(INDEX_HEADER), String(r.json.index));
      assert.equal(r.headers.get(LAST_CONTACT_HEADER), "100");
      assert.deepEqual(r.json.delta, {
        from: idx,
        services: { new: r.json.delta.services.new },
        removed: [],
      });
      assert.equal(r.json.delta.services.new.length, 1);
    }
    assert.equal(t.watchPath.held, 0);
    const m = await (await t.app.request("/metrics")).text();
    assert.match(m, /skein_control_catalog_answers_total\{kind="delta"\} 3/);
    assert.match(m, /route="\/v1\/catalog",code="200"\} 4/);
  } finally {
    await t.close();
  }
});

Deno.test("a watch without a mesh certificate, or at an index already passed, goes through the app", async () => {
  const t = await setup();
  try {
    await t.put("a", "1");
    const ac = new AbortController();
    const anon = t.get("/v1/catalog?stale=true&index=1&wait=5m", { cert: false, signal: ac.signal })
      .catch(() => null);
    await until("the anonymous watch on the index watcher", () => t.backend.watcher.waiting === 1);
    assert.equal(t.watchPath.held, 0);
    ac.abort();
    await anon;
    // Index 0 is behind the node: answered at once, whole (this node never served index 0).
    const behind = await t.get("/v1/catalog?stale=true&index=0&wait=5m");
    assert.equal(behind.status, 200);
    assert.deepEqual(Object.keys(behind.json.services), ["a"]);
  } finally {
    await t.close();
  }
});

Deno.test("a held watch gets an empty delta when its wait runs out, 503 stale_state past max_stale, and a client that leaves frees its slot", async () => {
  const t = await setup();
  try {
    await t.put("a", "1");
    const idx = (await t.get("/v1/catalog?stale=true")).json.index as number;
    const quiet = await t.get(`/v1/catalog?stale=true&index=${idx}&wait=1s`);
    assert.equal(quiet.status, 200);
    assert.deepEqual(quiet.json, { index: idx, delta: { from: idx, services: {}, removed: [] } });

    const ac = new AbortController();
    const gone = t.get(`/v1/catalog?stale=true&index=${idx}&wait=5m`, { signal: ac.signal })
      .catch(() => null);
    await until("a held watch", () => t.watchPath.held === 1);
    ac.abort();
    await gone;
    await until("its slot back", () => t.watchPath.held === 0);

    const cut = t.get(`/v1/catalog?stale=true&index=${idx}&wait=5m`);
    await until("a held watch", () => t.watchPath.held === 1);
    t.backend.lastContactMs = 9_000;
    const r = await cut;
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, "stale_state");
    assert.equal(r.headers.get(LAST_CONTACT_HEADER), "9000");
    assert.equal(t.watchPath.held, 0);
  } finally {
    await t.close();
  }
});

Deno.test("held watches count against the node's watcher bound: one more gets 429 too_many_watchers", async () => {
  const t = await setup();
  try {
    await t.put("a", "1");
    (t.backend.watcher as { maxWaiters: number }).maxWaiters = 1;
    const idx = (await t.get("/v1/catalog?stale=true")).json.index as number;
    const ac = new AbortController();
    const first = t.get(`/v1/catalog?stale=true&index=${idx}&wait=5m`, { signal: ac.signal })
      .catch(() => null);
    await until("a held watch", () => t.watchPath.held === 1);
    const second = await t.get(`/v1/catalog?stale=true&index=${idx}&wait=5m`);
    assert.equal(second.status, 429);
    assert.equal(second.json.error.code, "too_many_watchers");
    assert.deepEqual(second.json.error.details, { limit: 1 });
    assert.equal(second.headers.get(LAST_CONTACT_HEADER), "100");
    ac.abort();
    await first;
  } finally {
    await t.close();
  }
});

Deno.test("parseWatchQuery() takes only the stale blocking queries the route would answer alike", () => {
  const max = 300_000;
  assert.deepEqual(parseWatchQuery("stale=true&index=7&wait=60s", max), {
    index: 7,
    waitMs: 60_000,
  });
  assert.deepEqual(parseWatchQuery("index=7&stale=1", max), { index: 7, waitMs: 30_000 });
  assert.deepEqual(parseWatchQuery("stale=true&index=7&wait=1h", max), {
    index: 7,
    waitMs: max,
  });
  for (
    const q of [
      "index=7", // not stale: needs a read barrier
      "stale=true", // not blocking
      "stale=false&index=7",
      "stale=true&index=-1",
      "stale=true&index=7&index=8",
      "stale=true&index=7&wait=soon",
      "stale=true&index=7&wait=0s",
      "stale=true&index=7&extra=1",
    ]
  ) assert.equal(parseWatchQuery(q, max), null, q);
});
