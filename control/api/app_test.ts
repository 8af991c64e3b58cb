import assert from "node:assert/strict";
import {
  createApi,
  FORWARD_HEADER,
  INDEX_HEADER,
  MAX_WATCHERS_PER_ADDRESS,
  registerCommand,
} from "./app.ts";
import { RegistrationSchema, RegistryCommandSchema } from "../registry/mod.ts";
import { parseSpiffeId } from "../../common/tls/mod.ts";
import { ApiError } from "./errors.ts";
import { MAX_BODY_BYTES } from "./body.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

function setup(opts: { writeTimeoutMs?: number; readTimeoutMs?: number } = {}) {
  const backend = new FakeBackend();
  const app = createApi(backend, opts);
  const call = async (method: string, path: string, body?: unknown, headers: HeadersInit = {}) => {
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      init.body = typeof body === "string" || body instanceof Uint8Array
        ? body as BodyInit
        : JSON.stringify(body);
    }
    const res = await app.request(path, init);
    const text = await res.text();
    let json: Json = {};
    try {
      json = JSON.parse(text);
    } catch { /* metrics are text */ }
    return { status: res.status, json, text, headers: res.headers };
  };
  return { backend, app, call };
}

const policy = (service: string, timeout = "2s") => ({ kind: "Policy", service, timeout });

Deno.test("GET /v1/health reports node, role, leader, term and commit index", async () => {
  const { call } = setup();
  const before = Date.now();
  const r = await call("GET", "/v1/health");
  assert.equal(r.status, 200);
  // The node's clock, for `skein ctl check`'s skew check.
  const time = r.json.time as number;
  assert.ok(time >= before && time <= Date.now(), String(time));
  assert.deepEqual(r.json, {
    time,
    node: "cp-1",
    role: "leader",
    leader: "cp-1",
    term: 1,
    commit_index: 0,
    applied_index: 0,
    last_contact_ms: 0,
  });
});

Deno.test("members can be listed, added and removed", async () => {
  const { call } = setup();
  assert.deepEqual((await call("GET", "/v1/members")).json.members.map((m: Json) => m.node), [
    "cp-1",
  ]);
  const add = await call("POST", "/v1/members", { node: "cp-2", address: "10.0.0.2:7401" });
  assert.equal(add.status, 201);
  const dup = await call("POST", "/v1/members", { node: "cp-2", address: "10.0.0.2:7401" });
  assert.equal(dup.status, 409);
  assert.equal(dup.json.error.code, "member_exists");
  assert.deepEqual((await call("GET", "/v1/members")).json.members.map((m: Json) => m.node), [
    "cp-1",
    "cp-2",
  ]);
  assert.equal((await call("DELETE", "/v1/members/cp-2")).status, 200);
  assert.equal((await call("DELETE", "/v1/members/cp-2")).status, 404);
  // Followers forward callers' tokens to a member's API address: plaintext is refused.
  const http = await call("POST", "/v1/members", {
    node: "cp-3",
    address: "10.0.0.3:7401",
    api: "http://10.0.0.3:7400",
  });
  assert.equal(http.status, 400);
  assert.match(JSON.stringify(http.json.error), /api.*https:\/\//);
  const https = await call("POST", "/v1/members", {
    node: "cp-3",
    address: "10.0.0.3:7401",
    api: "https://10.0.0.3:7400",
  });
  assert.equal(https.status, 201);
});

Deno.test("instances: register, query with filters, fetch one, deregister", async () => {
  const { call } = setup();
  const r1 = await call("PUT", "/v1/services/api/instances/a1", {
    address: "10.0.0.1",
    port: 8080,
    zone: "z1",
    capabilities: ["charge"],
  });
  assert.equal(r1.status, 201);
  assert.equal(r1.json.instance.weight, 1);
  assert.equal(r1.json.instance.health, "passing");
  assert.equal(r1.json.instance.node, "");
  const again = await call("PUT", "/v1/services/api/instances/a1", r1.json.instance);
  assert.equal(again.status, 200);
  assert.equal(again.json.changed, false);
  await call("PUT", "/v1/services/api/instances/a2", {
    address: "10.0.0.2",
    port: 8080,
    zone: "z2",
    health: "critical",
  });
  await call("PUT", "/v1/services/db/instances/d1", { address: "10.0.0.3", port: 5432 });

  const list = await call("GET", "/v1/services");
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.services, [
    { name: "api", instances: 2, passing: 1, warning: 0, critical: 1 },
    { name: "db", instances: 1, passing: 1, warning: 0, critical: 0 },
  ]);
  assert.equal(list.headers.get(INDEX_HEADER), String(list.json.index));

  const ids = async (q: string) =>
    (await call("GET", `/v1/services/api${q}`)).json.instances.map((i: Json) => i.id);
  assert.deepEqual(await ids(""), ["a1", "a2"]);
  assert.deepEqual(await ids("?healthy=true"), ["a1"]);
  assert.deepEqual(await ids("?zone=z2"), ["a2"]);
  assert.deepEqual(await ids("?capability=charge"), ["a1"]);
  assert.deepEqual(await ids("?stale=true&healthy=false"), ["a1", "a2"]);

  assert.equal((await call("GET", "/v1/services/api/instances/a2")).json.instance.zone, "z2");
  assert.equal((await call("GET", "/v1/services/api/instances/zz")).status, 404);
  const del = await call("DELETE", "/v1/services/api/instances/a2");
  assert.equal(del.status, 200);
  assert.equal(del.json.instance.id, "a2");
  const gone = await call("DELETE", "/v1/services/api/instances/a2");
  assert.equal(gone.status, 404);
  assert.equal(gone.json.error.code, "not_found");
});

Deno.test("PUT /v1/heartbeat hands leases of registered instances to the backend and names unknown ones", async () => {
  const { call, backend } = setup();
  await call("PUT", "/v1/services/api/instances/a1", { address: "10.0.0.1", port: 80 });
  const r = await call("PUT", "/v1/heartbeat", {
    instances: [{ service: "api", id: "a1", health: "warning" }, { service: "api", id: "nope" }],
  });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { accepted: 1, unknown: [{ service: "api", id: "nope" }] });
  // No lease for a made-up id: those would fill the lease table.
  assert.deepEqual(backend.heartbeats, [[
    { service: "api", id: "a1", health: "warning" },
  ]]);
});

Deno.test("resources: put one and a list, get, list by kind, history, rollback, delete", async () => {
  const { call } = setup();
  const one = await call("PUT", "/v1/resources", policy("ledger"));
  assert.equal(one.status, 200);
  assert.deepEqual(one.json.items, [{
    kind: "Policy",
    name: "ledger",
    outcome: "created",
    revision: 1,
  }]);
  const many = await call("PUT", "/v1/resources", [
    policy("ledger", "3s"),
    { kind: "ExternalService", name: "stripe", hosts: ["api.stripe.com:443"] },
    { kind: "RateLimit", service: "ledger", requests_per_second: 5, burst: 10 },
  ]);
  assert.deepEqual(many.json.items.map((i: Json) => `${i.kind}/${i.name}:${i.outcome}`), [
    "Policy/ledger:updated",
    "ExternalService/stripe:created",
    "RateLimit/ledger:created",
  ]);
  const same = await call("PUT", "/v1/resources", [policy("ledger", "3s")]);
  assert.equal(same.json.items[0].outcome, "unchanged");

  const got = await call("GET", "/v1/resources/Policy/ledger");
  assert.equal(got.status, 200);
  assert.deepEqual(got.json.resource, policy("ledger", "3s"));
  assert.equal(got.json.revision, 2);
  assert.equal((await call("GET", "/v1/resources/policy/ledger")).status, 200);
  const byKind = await call("GET", "/v1/resources?kind=RateLimit");
  assert.deepEqual(byKind.json.resources.map((r: Json) => r.name), ["ledger"]);
  assert.equal((await call("GET", "/v1/resources")).json.resources.length, 3);

  const hist = await call("GET", "/v1/resources/Policy/ledger/history");
  assert.deepEqual(hist.json.revisions.map((r: Json) => r.revision), [1, 2]);
  const rb = await call("POST", "/v1/resources/Policy/ledger/rollback", { revision: 1 });
  assert.equal(rb.status, 200);
  assert.deepEqual([rb.json.outcome, rb.json.revision], ["updated", 3]);
  assert.equal((await call("GET", "/v1/resources/Policy/ledger")).json.resource.timeout, "2s");
  const rbMissing = await call("POST", "/v1/resources/Policy/ledger/rollback", { revision: 42 });
  assert.equal(rbMissing.status, 404);
  assert.equal(rbMissing.json.error.code, "revision_not_found");

  assert.equal((await call("DELETE", "/v1/resources/Policy/ledger")).status, 200);
  assert.equal((await call("GET", "/v1/resources/Policy/ledger")).status, 404);
  assert.equal((await call("DELETE", "/v1/resources/Policy/ledger")).status, 404);
  const rbDeleted = await call("POST", "/v1/resources/Policy/ledger/rollback", { revision: 4 });
  assert.equal(rbDeleted.status, 409);
  assert.equal((await call("GET", "/v1/resources/Policy/nope/history")).status, 404);
});

Deno.test("GET /v1/catalog returns index, services and resources with X-Skein-Index", async () => {
  const { call } = setup();
  await call("PUT", "/v1/services/api/instances/a1", { address: "10.0.0.1", port: 80 });
  await call("PUT", "/v1/resources", policy("api"));
  const r = await call("GET", "/v1/catalog");
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.json).sort(), ["index", "resources", "services", "trust"]);
  assert.equal(r.json.index, 2);
  assert.equal(r.headers.get(INDEX_HEADER), "2");
  assert.deepEqual(r.json.services.api.map((i: Json) => i.id), ["a1"]);
  assert.deepEqual(r.json.resources, [policy("api")]);
});

Deno.test("blocking catalog query wakes on a write", async () => {
  const { call, backend } = setup();
  await call("PUT", "/v1/services/api/instances/a1", { address: "10.0.0.1", port: 80 });
  const idx = backend.state().index;
  const pending = call("GET", `/v1/catalog?index=${idx}&wait=5m`);
  // Let the request reach its wait before writing.
  while (backend.watcher.waiting === 0) await new Promise((r) => setTimeout(r, 1));
  await call("PUT", "/v1/services/api/instances/a2", { address: "10.0.0.2", port: 80 });
  const r = await pending;
  assert.equal(r.status, 200);
  assert.ok(r.json.index > idx);
  assert.equal(r.headers.get(INDEX_HEADER), String(r.json.index));
  assert.deepEqual(r.json.services.api.map((i: Json) => i.id), ["a1", "a2"]);
});

Deno.test("blocking catalog query times out with the same index", async () => {
  const { call, backend } = setup();
  await call("PUT", "/v1/services/api/instances/a1", { address: "10.0.0.1", port: 80 });
  const idx = backend.state().index;
  const r = await call("GET", `/v1/catalog?index=${idx}&wait=20ms`);
  assert.equal(r.status, 200);
  assert.equal(r.json.index, idx);
  assert.equal(r.headers.get(INDEX_HEADER), String(idx));
  // A no-op write does not advance the catalog index, so it does not wake anyone either.
  const noop = call("GET", `/v1/catalog?index=${idx}&wait=30ms`);
  await call("PUT", "/v1/services/api/instances/a1", { address: "10.0.0.1", port: 80 });
  assert.equal((await noop).json.index, idx);
});

Deno.test("a write without quorum gets 503 no_quorum within the bound and changes nothing", async () => {
  const { call, backend } = setup({ writeTimeoutMs: 30, readTimeoutMs: 30 });
  backend.quorum = false;
  const w = await call("PUT", "/v1/services/api/instances/a1", { address: "10.0.0.1", port: 80 });
  assert.equal(w.status, 503);
  assert.equal(w.json.error.code, "no_quorum");
  assert.equal(backend.proposed.length, 1);
  const r = await call("GET", "/v1/services");
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, "no_quorum");
  const m = await call("POST", "/v1/members", { node: "cp-9", address: "10.0.0.9:7401" });
  assert.equal(m.status, 503);
  // A stale read still answers from local state, which the failed write never touched.
  const stale = await call("GET", "/v1/services?stale=true");
  assert.equal(stale.status, 200);
  assert.deepEqual(stale.json.services, []);
  backend.quorum = true;
  assert.equal((await call("GET", "/v1/services")).status, 200);
});

Deno.test("a follower forwards writes and linearizable reads to the leader, serves stale reads", async () => {
  const leader = new FakeBackend({ node: "cp-1" });
  const leaderApp = createApi(leader);
  const seen: string[] = [];
  const follower = new FakeBackend({
    node: "cp-2",
    leader: false,
    leaderNode: "cp-1",
    leaderApi: "http://cp-1.test:7400/",
  });
  const followerApp = createApi(follower, {
    fetch: (req) => {
      seen.push(
        `${req.method} ${new URL(req.url).host}${new URL(req.url).pathname} ${
          req.headers.get(FORWARD_HEADER)
        }`,
      );
      return Promise.resolve(leaderApp.fetch(req));
    },
  });
  const w = await followerApp.request("/v1/services/api/instances/a1", {
    method: "PUT",
    body: JSON.stringify({ address: "10.0.0.1", port: 80 }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(w.status, 201);
  assert.equal(leader.state().instance("api", "a1")?.port, 80);
  assert.equal(follower.state().instance("api", "a1"), undefined);
  assert.deepEqual(seen, ["PUT cp-1.test:7400/v1/services/api/instances/a1 cp-2"]);

  const read = await followerApp.request("/v1/services/api");
  assert.equal(read.status, 200);
  assert.deepEqual((await read.json()).instances.map((i: Json) => i.id), ["a1"]);
  assert.equal(read.headers.get(INDEX_HEADER), "1");
  const stale = await followerApp.request("/v1/services/api?stale=true");
  assert.deepEqual((await stale.json()).instances, []);

  const hb = await followerApp.request("/v1/heartbeat", {
    method: "PUT",
    body: JSON.stringify({ instances: [{ service: "api", id: "a1" }] }),
  });
  assert.equal(hb.status, 200);
  assert.equal(leader.heartbeats.length, 1);

  // Bad bodies are refused by the follower itself, before any forwarding.
  const before = seen.length;
  const bad = await followerApp.request("/v1/resources", { method: "PUT", body: "{" });
  assert.equal(bad.status, 400);
  assert.equal(seen.length, before);
});

Deno.test("forwarding stops after one hop and fails with 503 when no leader is known", async () => {
  const a = new FakeBackend({ node: "cp-2", leader: false, leaderApi: "http://cp-3.test" });
  const b = new FakeBackend({ node: "cp-3", leader: false, leaderApi: "http://cp-2.test" });
  let hops = 0;
  const appB = createApi(b, { fetch: () => Promise.reject(new Error("must not forward twice")) });
  const appA = createApi(a, {
    fetch: (req) => {
      hops++;
      return Promise.resolve(appB.fetch(req));
    },
  });
  const r = await appA.request("/v1/services/x/instances/y", { method: "DELETE" });
  assert.equal(r.status, 503);
  assert.equal((await r.json()).error.code, "no_leader");
  assert.equal(hops, 1);

  const lonely = createApi(new FakeBackend({ node: "cp-4", leader: false }));
  const r2 = await lonely.request("/v1/catalog");
  assert.equal(r2.status, 503);
  assert.equal((await r2.json()).error.code, "no_leader");

  const down = createApi(new FakeBackend({ node: "cp-5", leader: false, leaderApi: "http://x" }), {
    fetch: () => Promise.reject(new TypeError("connection refused")),
  });
  const r3 = await down.request("/v1/services");
  assert.equal(r3.status, 503);
  assert.equal((await r3.json()).error.code, "leader_unreachable");
});

Deno.test("bodies over the limit get 413, by Content-Length and while streaming", async () => {
  const { app } = setup();
  const big = "x".repeat(MAX_BODY_BYTES + 1);
  const r1 = await app.request("/v1/resources", { method: "PUT", body: big });
  assert.equal(r1.status, 413);
  assert.equal((await r1.json()).error.code, "body_too_large");
  let pulled = 0;
  const chunk = new Uint8Array(64 * 1024);
  const stream = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      pulled++;
      if (pulled > 10_000) ctrl.close();
      else ctrl.enqueue(chunk);
    },
  });
  const r2 = await app.request("/v1/resources", { method: "PUT", body: stream });
  assert.equal(r2.status, 413);
  // Reading stopped soon after the limit instead of draining the whole stream.
  assert.ok(pulled < 40, `pulled ${pulled} chunks`);
});

const BAD: [string, string, string, unknown, number, string, string?][] = [
  // [name, method, path, body, status, error code, expected path or message fragment]
  ["malformed JSON", "PUT", "/v1/services/api/instances/a1", "{", 400, "invalid_json"],
  ["empty body", "PUT", "/v1/services/api/instances/a1", "", 400, "invalid_json"],
  [
    "invalid UTF-8",
    "PUT",
    "/v1/resources",
    new Uint8Array([0x7b, 0xff, 0x7d]),
    400,
    "invalid_json",
    "UTF-8",
  ],
  ["JSON array as instance", "PUT", "/v1/services/api/instances/a1", [], 400, "invalid_request"],
  ["JSON null", "PUT", "/v1/services/api/instances/a1", "null", 400, "invalid_request"],
  [
    "missing port",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x" },
    400,
    "invalid_request",
    "port",
  ],
  [
    "port as string",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: "80" },
    400,
    "invalid_request",
    "port",
  ],
  [
    "port out of range",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: 70000 },
    400,
    "invalid_request",
    "port",
  ],
  [
    "port fractional",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: 80.5 },
    400,
    "invalid_request",
    "port",
  ],
  [
    "empty address",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "", port: 80 },
    400,
    "invalid_request",
    "address",
  ],
  [
    "unknown key",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: 80, colour: "red" },
    400,
    "invalid_request",
    "colour",
  ],
  [
    "bad health",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: 80, health: "ok" },
    400,
    "invalid_request",
    "health",
  ],
  [
    "tags not a list",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: 80, tags: "a" },
    400,
    "invalid_request",
    "tags",
  ],
  [
    "meta value number",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: 80, meta: { a: 1 } },
    400,
    "invalid_request",
    "meta.a",
  ],
  [
    "negative weight",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: 80, weight: -1 },
    400,
    "invalid_request",
    "weight",
  ],
  [
    "service mismatch",
    "PUT",
    "/v1/services/api/instances/a1",
    { address: "x", port: 80, service: "db" },
    400,
    "invalid_request",
    "service",
  ],
  [
    "bad service name in path",
    "PUT",
    "/v1/services/-bad-/instances/a1",
    { address: "x", port: 80 },
    400,
    "invalid_request",
    "path.name",
  ],
  [
    "resource without kind",
    "PUT",
    "/v1/resources",
    { service: "a" },
    400,
    "invalid_request",
    "kind",
  ],
  [
    "unknown resource kind",
    "PUT",
    "/v1/resources",
    { kind: "Polcy", service: "a" },
    400,
    "invalid_request",
    "kind",
  ],
  [
    "bad duration in list",
    "PUT",
    "/v1/resources",
    [policy("a"), { kind: "Policy", service: "b", timeout: "fast" }],
    400,
    "invalid_request",
    "[1].timeout",
  ],
  [
    "unknown field in resource",
    "PUT",
    "/v1/resources",
    { kind: "RateLimit", service: "a", requests_per_second: 1, burst: 1, x: 1 },
    400,
    "invalid_request",
    "x",
  ],
  ["empty resource list", "PUT", "/v1/resources", [], 400, "invalid_request"],
  [
    "duplicate resources",
    "PUT",
    "/v1/resources",
    [policy("a"), policy("a", "1s")],
    400,
    "duplicate_resource",
  ],
  [
    "too many resources",
    "PUT",
    "/v1/resources",
    Array.from({ length: 101 }, (_, i) => policy(`s${i}`)),
    400,
    "too_many_resources",
  ],
  [
    "rollback revision 0",
    "POST",
    "/v1/resources/Policy/a/rollback",
    { revision: 0 },
    400,
    "invalid_request",
    "revision",
  ],
  [
    "rollback revision string",
    "POST",
    "/v1/resources/Policy/a/rollback",
    { revision: "1" },
    400,
    "invalid_request",
    "revision",
  ],
  [
    "unknown kind in path",
    "GET",
    "/v1/resources/Polcy/a",
    undefined,
    400,
    "unknown_kind",
    "did you mean Policy?",
  ],
  [
    "heartbeat empty",
    "PUT",
    "/v1/heartbeat",
    { instances: [] },
    400,
    "invalid_request",
    "instances",
  ],
  [
    "heartbeat bad health",
    "PUT",
    "/v1/heartbeat",
    { instances: [{ service: "a", id: "b", health: "dead" }] },
    400,
    "invalid_request",
    "instances[0].health",
  ],
  [
    "member without address",
    "POST",
    "/v1/members",
    { node: "cp-2" },
    400,
    "invalid_request",
    "address",
  ],
  [
    "member bad address",
    "POST",
    "/v1/members",
    { node: "cp-2", address: "nowhere" },
    400,
    "invalid_request",
    "address",
  ],
  ["catalog bad index", "GET", "/v1/catalog?index=abc", undefined, 400, "invalid_request", "index"],
  [
    "catalog bad wait",
    "GET",
    "/v1/catalog?index=1&wait=soon",
    undefined,
    400,
    "invalid_request",
    "wait",
  ],
  [
    "unknown query param",
    "GET",
    "/v1/services?healty=true",
    undefined,
    400,
    "invalid_request",
    "healty",
  ],
  [
    "bad boolean",
    "GET",
    "/v1/services/api?healthy=yes",
    undefined,
    400,
    "invalid_request",
    "healthy",
  ],
  ["unknown route", "GET", "/v1/nope", undefined, 404, "not_found"],
  ["wrong method", "PATCH", "/v1/services", undefined, 404, "not_found"],
];

Deno.test("bad requests get the SPEC error body with a status, code and field path", async (t) => {
  const { call, backend } = setup();
  for (const [name, method, path, body, status, code, where] of BAD) {
    await t.step(name, async () => {
      const r = await call(method, path, body);
      assert.equal(r.status, status, JSON.stringify(r.json));
      assert.equal(r.json.error?.code, code);
      assert.equal(typeof r.json.error.message, "string");
      assert.equal(typeof r.json.error.details, "object");
      if (where) {
        const paths = (r.json.error.details.issues ?? []).map((i: Json) => i.path).join(" ");
        assert.ok(
          r.json.error.message.includes(where) || paths.includes(where),
          `${where} not in ${r.json.error.message} / ${paths}`,
        );
      }
    });
  }
  assert.equal(backend.proposed.length, 0, "no bad request reached the log");
});

Deno.test("GET /metrics exposes control gauges and request counters", async () => {
  const { call } = setup();
  await call("PUT", "/v1/services/api/instances/a1", { address: "10.0.0.1", port: 80 });
  await call("GET", "/v1/services/api");
  const r = await call("GET", "/metrics");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
  assert.match(r.text, /^skein_control_instances\{health="passing"\} 1$/m);
  assert.match(r.text, /^skein_control_is_leader 1$/m);
  assert.match(
    r.text,
    /^skein_control_api_requests_total\{method="GET",route="\/v1\/services\/:name",code="200"\} 1$/m,
  );
});

Deno.test("authorize sees the bearer token, method and path, and can refuse", async () => {
  const seen: string[] = [];
  const app = createApi(new FakeBackend(), {
    authorize: ({ token, method, path }) => {
      seen.push(`${method} ${path} ${token}`);
      if (path !== "/v1/health" && token !== "good") {
        throw new ApiError(401, "unauthenticated", "a valid bearer token is required");
      }
    },
  });
  assert.equal((await app.request("/v1/health")).status, 200);
  const denied = await app.request("/v1/services");
  assert.equal(denied.status, 401);
  assert.equal((await denied.json()).error.code, "unauthenticated");
  const ok = await app.request("/v1/services", { headers: { authorization: "Bearer good" } });
  assert.equal(ok.status, 200);
  await app.request("/v1/members/cp-9", {
    method: "DELETE",
    headers: { authorization: "Bearer x" },
  });
  assert.deepEqual(seen, [
    "GET /v1/health null",
    "GET /v1/services null",
    "GET /v1/services good",
    "DELETE /v1/members/cp-9 x",
  ]);
});

Deno.test("over a real socket: 413 for a large chunked body, blocking query wakes on a write", async () => {
  const backend = new FakeBackend();
  const app = createApi(backend);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        sent++;
        if (sent > 64) ctrl.close();
        else ctrl.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const big = await fetch(`${base}/v1/resources`, { method: "PUT", body });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).error.code, "body_too_large");

    const pending = fetch(`${base}/v1/catalog?index=0&wait=1m`);
    while (backend.watcher.waiting === 0) await new Promise((r) => setTimeout(r, 1));
    const put = await fetch(`${base}/v1/services/api/instances/a1`, {
      method: "PUT",
      body: JSON.stringify({ address: "127.0.0.1", port: 1234 }),
    });
    assert.equal(put.status, 201);
    await put.body?.cancel();
    const res = await pending;
    assert.equal(res.headers.get(INDEX_HEADER), "1");
    assert.deepEqual(Object.keys((await res.json()).services), ["api"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("registerCommand() equals the command schema's output, key order included", () => {
  const bodies: Record<string, unknown>[] = [
    { address: "10.0.0.1", port: 80 },
    { id: "a1", service: "api", address: "h", port: 1, meta: { b: "2", a: "1" } },
    {
      address: "h",
      port: 65535,
      node: "n",
      zone: "z",
      version: "v",
      weight: 0,
      tags: ["t"],
      capabilities: ["c"],
      health: "warning",
    },
  ];
  for (const body of bodies) {
    const reg = RegistrationSchema.parse(body);
    const fast = registerCommand(reg, "api", "a1");
    const slow = RegistryCommandSchema.parse({
      type: "register_instance",
      instance: { ...reg, service: "api", id: "a1" },
    });
    assert.equal(JSON.stringify(fast), JSON.stringify(slow), JSON.stringify(body));
    assert.deepEqual(RegistryCommandSchema.parse(fast), fast);
  }
});

Deno.test("a registration body over 32 KiB is refused before it reaches the log", async () => {
  const { call, backend } = setup();
  const r = await call("PUT", "/v1/services/api/instances/a1", {
    address: "10.0.0.1",
    port: 80,
    meta: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "\u0001".repeat(200)])),
  });
  assert.equal(r.status, 413);
  assert.equal(backend.state().instance("api", "a1"), undefined);
});

Deno.test("one client address holds at most MAX_WATCHERS_PER_ADDRESS blocking catalog queries", async () => {
  const backend = new FakeBackend();
  const app = createApi(backend);
  const from = (hostname: string) => ({ remoteAddr: { hostname, port: 1 }, peer: null });
  const ctl = new AbortController();
  const waiting: Promise<Response>[] = [];
  const url = `http://x/v1/catalog?index=${backend.state().index}&wait=30s`;
  for (let i = 0; i < MAX_WATCHERS_PER_ADDRESS; i++) {
    waiting.push(
      Promise.resolve(
        app.request(new Request(url, { signal: ctl.signal }), undefined, from("10.0.0.9")),
      ),
    );
  }
  await new Promise((r) => setTimeout(r, 20));
  const over = await app.request(new Request(url), undefined, from("10.0.0.9"));
  assert.equal(over.status, 429);
  assert.equal((await over.json()).error.code, "too_many_watchers");
  // Another host is not held back by the first one's queries.
  const other = app.request(new Request(url, { signal: ctl.signal }), undefined, from("10.0.0.10"));
  await new Promise((r) => setTimeout(r, 20));
  ctl.abort();
  await Promise.allSettled([...waiting, Promise.resolve(other)]);
  // Slots come back once the queries end.
  const again = app.request(new Request(url.replace("30s", "1s")), undefined, from("10.0.0.9"));
  assert.equal((await again).status, 200);
});

Deno.test("proxies behind one NAT address are not held to MAX_WATCHERS_PER_ADDRESS", async () => {
  const backend = new FakeBackend();
  const app = createApi(backend);
  const peer = parseSpiffeId("spiffe://skein.local/svc/web");
  assert.ok(peer);
  const proxy = { remoteAddr: { hostname: "10.0.0.9", port: 1 }, peer };
  const ctl = new AbortController();
  const url = `http://x/v1/catalog?index=${backend.state().index}&wait=30s`;
  const waiting: Promise<Response>[] = [];
  for (let i = 0; i < MAX_WATCHERS_PER_ADDRESS; i++) {
    waiting.push(
      Promise.resolve(app.request(new Request(url, { signal: ctl.signal }), undefined, proxy)),
    );
  }
  try {
    // One more proxy from the same address waits like the others (answered when its wait ends).
    const more = await app.request(new Request(url.replace("30s", "1s")), undefined, proxy);
    assert.equal(more.status, 200, "a proxy behind a busy address was refused a watch");
  } finally {
    ctl.abort();
    await Promise.allSettled(waiting);
  }
});
