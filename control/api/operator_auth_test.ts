import assert from "node:assert/strict";
import { memoryLogger } from "../../common/log.ts";
import { createOperatorToken, hashSecret, type Role } from "../auth/mod.ts";
import { createApi } from "./app.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { operatorAuthorizer } from "./operator_auth.ts";
import { parseSpiffeId, type SpiffeId } from "../../common/tls/mod.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const NOW = Date.UTC(2026, 0, 1);
const POLICY = { kind: "Policy", service: "ledger", timeout: "2s" };

/** A backend holding one token per role, and an app enforcing them. */
function setup(
  opts: { node?: string; leader?: boolean; fetch?: (r: Request) => Promise<Response> } = {},
) {
  const backend = new FakeBackend({
    node: opts.node,
    leader: opts.leader,
    leaderNode: opts.leader === false ? "cp-1" : undefined,
    leaderApi: opts.leader === false ? "http://leader.invalid" : undefined,
  });
  const log = memoryLogger();
  const clock = { now: NOW };
  const secrets = {} as Record<Role, string>;
  const ids = {} as Record<Role, string>;
  for (const role of ["read", "operator", "admin"] as const) {
    const t = createOperatorToken({ name: role, role, now: NOW });
    backend.applyDirect({ type: "put_operator_token", record: t.record });
    secrets[role] = t.secret;
    ids[role] = t.record.id;
  }
  const app = createApi(backend, {
    logger: log,
    now: () => clock.now,
    fetch: opts.fetch,
    authorize: operatorAuthorizer({
      tokens: () => backend.state().operatorTokens(),
      now: () => clock.now,
      log,
    }),
  });
  const call = async (
    method: string,
    path: string,
    token?: string,
    body?: unknown,
    peer: SpiffeId | null = null,
    extraHeaders: Record<string, string> = {},
  ) => {
    const headers: Record<string, string> = { ...extraHeaders };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const res = await app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }, { peer });
    const text = await res.text();
    let json: Json = {};
    try {
      json = JSON.parse(text);
    } catch { /* metrics are text */ }
    return { status: res.status, json, text };
  };
  return { backend, app, call, log, secrets, ids, clock };
}

Deno.test("a resource write without a token is 401, with a read token 403, operator 200", async () => {
  const { call, secrets } = setup();
  const none = await call("PUT", "/v1/resources", undefined, POLICY);
  assert.equal(none.status, 401);
  assert.equal(none.json.error.code, "unauthenticated");
  assert.equal(typeof none.json.error.message, "string");
  const bad = await call("PUT", "/v1/resources", "skn_op_not-a-real-token", POLICY);
  assert.equal(bad.status, 401);
  assert.equal(bad.json.error.code, "invalid_token");
  const read = await call("PUT", "/v1/resources", secrets.read, POLICY);
  assert.equal(read.status, 403);
  assert.equal(read.json.error.code, "forbidden");
  assert.equal(read.json.error.details.required, "operator");
  const op = await call("PUT", "/v1/resources", secrets.operator, POLICY);
  assert.equal(op.status, 200);
  assert.equal(op.json.items[0].outcome, "created");
  const del = await call("DELETE", "/v1/resources/Policy/ledger", secrets.read);
  assert.equal(del.status, 403);
  const rb = await call("POST", "/v1/resources/Policy/ledger/rollback", undefined, { revision: 1 });
  assert.equal(rb.status, 401);
});

Deno.test("members, tokens and CA writes need admin; reads of them need a token", async () => {
  const { call, secrets } = setup();
  const cases: [string, string, string | undefined, number, unknown?][] = [
    ["GET", "/v1/members", undefined, 401],
    ["GET", "/v1/members", secrets.read, 200],
    ["POST", "/v1/members", secrets.operator, 403, { node: "cp-2", address: "h:1" }],
    ["DELETE", "/v1/members/cp-9", secrets.operator, 403],
    ["POST", "/v1/tokens", secrets.operator, 403, { service: "ledger" }],
    ["POST", "/v1/tokens", secrets.admin, 201, { service: "ledger" }],
    ["GET", "/v1/tokens", secrets.read, 403],
    ["GET", "/v1/tokens", secrets.admin, 200],
    ["POST", "/v1/ca/revoke", secrets.operator, 403, { service: "ledger" }],
    ["POST", "/v1/operator-tokens", secrets.operator, 403, { role: "read" }],
    ["GET", "/v1/operator-tokens", undefined, 401],
    ["GET", "/v1/nothing-here", undefined, 401],
  ];
  for (const [m, p, tok, want, body] of cases) {
    const r = await call(m, p, tok, body);
    assert.equal(r.status, want, `${m} ${p}: ${r.text}`);
  }
});

const LEDGER = parseSpiffeId("spiffe://skein.local/svc/ledger")!;
const CP2 = parseSpiffeId("spiffe://skein.local/control/cp-2")!;

Deno.test("proxy routes need a proxy certificate or a token; without either they are 401", async () => {
  const { call, secrets } = setup();
  const reg = { address: "10.0.0.1", port: 80 };
  assert.equal(
    (await call("PUT", "/v1/services/ledger/instances/i-1", undefined, reg)).status,
    401,
  );
  assert.equal(
    (await call("PUT", "/v1/services/ledger/instances/i-1", undefined, reg, LEDGER)).status,
    201,
  );
  for (const p of ["/v1/catalog", "/v1/services", "/v1/services/ledger", "/v1/resources"]) {
    assert.equal((await call("GET", p)).status, 401, p);
    assert.equal((await call("GET", p, undefined, undefined, LEDGER)).status, 200, p);
    assert.equal((await call("GET", p, secrets.read)).status, 200, p);
  }
  assert.equal((await call("GET", "/v1/health")).status, 200);
  assert.equal((await call("GET", "/metrics")).status, 200);
  const hb = { instances: [{ service: "ledger", id: "i-1" }] };
  assert.equal((await call("PUT", "/v1/heartbeat", undefined, hb)).status, 401);
  assert.equal((await call("PUT", "/v1/heartbeat", undefined, hb, LEDGER)).status, 200);
  // Sign is open to the route check; the handler itself wants a join token or a certificate.
  const sign = await call("POST", "/v1/ca/sign", undefined, { csr: "x" });
  assert.equal(sign.status, 401);
  assert.equal(sign.json.error.code, "join_token_required");
  assert.equal(
    (await call("DELETE", "/v1/services/ledger/instances/i-1", undefined, undefined, LEDGER))
      .status,
    200,
  );
});

Deno.test("a proxy acts only for its own service, also in heartbeat bodies", async () => {
  const { call, secrets } = setup();
  const reg = { address: "10.0.0.1", port: 80 };
  const other = await call("PUT", "/v1/services/payments/instances/p-1", undefined, reg, LEDGER);
  assert.equal(other.status, 403);
  assert.equal(other.json.error.code, "forbidden");
  assert.equal(
    (await call("DELETE", "/v1/services/payments/instances/p-1", undefined, undefined, LEDGER))
      .status,
    403,
  );
  assert.equal(
    (await call("PUT", "/v1/services/payments/instances/p-1", secrets.operator, reg)).status,
    201,
  );
  const mixed = {
    instances: [{ service: "ledger", id: "i-1" }, { service: "payments", id: "p-1" }],
  };
  const hb = await call("PUT", "/v1/heartbeat", undefined, mixed, LEDGER);
  assert.equal(hb.status, 403);
  assert.match(hb.json.error.message, /payments/);
  assert.equal((await call("PUT", "/v1/heartbeat", secrets.operator, mixed)).status, 200);
  // Proxy certificates never reach operator routes.
  assert.equal((await call("PUT", "/v1/resources", undefined, POLICY, LEDGER)).status, 403);
  assert.equal((await call("GET", "/v1/members", undefined, undefined, LEDGER)).status, 403);
});

Deno.test("a control certificate is not an operator, and a bad token is not rescued by a certificate", async () => {
  const { call } = setup();
  assert.equal((await call("GET", "/v1/members", undefined, undefined, CP2)).status, 403);
  assert.equal((await call("PUT", "/v1/resources", undefined, POLICY, CP2)).status, 403);
  assert.equal((await call("GET", "/v1/catalog", "skn_op_forged", undefined, LEDGER)).status, 401);
});

Deno.test("the forwarded-peer header counts only from a control node", async () => {
  const { call } = setup();
  const claim = { "x-skein-forwarded-peer": LEDGER.uri };
  // From a client without a certificate or with a proxy's: ignored.
  assert.equal((await call("GET", "/v1/catalog", undefined, undefined, null, claim)).status, 401);
  const other = parseSpiffeId("spiffe://skein.local/svc/payments")!;
  const reg = { address: "10.0.0.1", port: 80 };
  assert.equal(
    (await call("PUT", "/v1/services/ledger/instances/i", undefined, reg, other, claim)).status,
    403,
  );
  // From a control node: the original caller is authorized, not the control node.
  assert.equal((await call("GET", "/v1/catalog", undefined, undefined, CP2, claim)).status, 200);
  assert.equal(
    (await call("PUT", "/v1/services/ledger/instances/i", undefined, reg, CP2, claim)).status,
    201,
  );
  const none = { "x-skein-forwarded-peer": "none" };
  assert.equal((await call("GET", "/v1/catalog", undefined, undefined, CP2, none)).status, 401);
  const foreign = { "x-skein-forwarded-peer": "spiffe://evil.example/svc/ledger" };
  assert.equal((await call("GET", "/v1/catalog", undefined, undefined, CP2, foreign)).status, 400);
});

Deno.test("POST /v1/operator-tokens returns the secret once; it then works for its role", async () => {
  const { call, secrets, backend, log } = setup();
  const made = await call("POST", "/v1/operator-tokens", secrets.admin, {
    role: "operator",
    name: "ci",
    ttl: "1h",
  });
  assert.equal(made.status, 201, made.text);
  const secret = made.json.token as string;
  assert.match(secret, /^skn_op_/);
  assert.equal(made.json.role, "operator");
  assert.equal(made.json.expires_at, new Date(NOW + 3_600_000).toISOString());
  // Only the hash is replicated.
  const rec = backend.state().operatorTokens().find((r) => r.id === made.json.id);
  assert.equal(rec?.hash, hashSecret(secret));
  assert.ok(!new TextDecoder().decode(backend.state().snapshot()).includes(secret));
  assert.equal((await call("PUT", "/v1/resources", secret, POLICY)).status, 200);
  assert.equal((await call("POST", "/v1/tokens", secret, { service: "x" })).status, 403);
  const list = await call("GET", "/v1/operator-tokens", secrets.admin);
  assert.equal(list.status, 200);
  assert.ok(list.json.tokens.some((t: Json) => t.id === made.json.id && t.name === "ci"));
  assert.ok(!list.text.includes(rec!.hash), "listings carry no hashes");
  assert.ok(!log.lines.join("\n").includes(secret), "the secret is never logged");
  const badRole = await call("POST", "/v1/operator-tokens", secrets.admin, { role: "root" });
  assert.equal(badRole.status, 400);
});

Deno.test("a revoked or expired token is refused with 401", async () => {
  const { call, secrets, ids, clock } = setup();
  const t = await call("POST", "/v1/operator-tokens", secrets.admin, { role: "read", ttl: "1m" });
  assert.equal((await call("GET", "/v1/members", t.json.token)).status, 200);
  clock.now += 60_000;
  const expired = await call("GET", "/v1/members", t.json.token);
  assert.equal(expired.status, 401);
  assert.equal(expired.json.error.code, "invalid_token");
  const rev = await call("DELETE", `/v1/operator-tokens/${ids.operator}`, secrets.admin);
  assert.equal(rev.status, 200, rev.text);
  const after = await call("PUT", "/v1/resources", secrets.operator, POLICY);
  assert.equal(after.status, 401);
  assert.equal(
    (await call("DELETE", `/v1/operator-tokens/${ids.operator}`, secrets.admin)).status,
    404,
  );
});

Deno.test("a bootstrap token registered by hash is accepted as admin", async () => {
  const { call, backend } = setup();
  const bootstrap = "skn_bootstrap-file-token-0123456789abcdef";
  backend.applyDirect({
    type: "put_operator_token",
    record: {
      id: "boot-cp-1",
      name: "bootstrap cp-1",
      role: "admin",
      hash: hashSecret(bootstrap),
      createdAt: NOW,
      expiresAt: null,
    },
  });
  const r = await call("POST", "/v1/operator-tokens", bootstrap, { role: "read" });
  assert.equal(r.status, 201);
  assert.equal((await call("GET", "/v1/members", bootstrap + "x")).status, 401);
});

Deno.test("denied calls are audited without the token; tokens never appear in error bodies", async () => {
  const { call, secrets, log } = setup();
  const r = await call("POST", "/v1/members", secrets.read, { node: "cp-2", address: "h:1" });
  assert.equal(r.status, 403);
  assert.ok(!r.text.includes(secrets.read));
  const u = await call("POST", "/v1/members", "skn_op_guess", { node: "cp-2", address: "h:1" });
  assert.equal(u.status, 401);
  assert.ok(!u.text.includes("skn_op_guess"));
  const text = log.lines.join("\n");
  assert.match(text, /api call denied/);
  assert.match(text, /status=403/);
  assert.match(text, /status=401/);
  assert.match(text, /credential_id=\w+ role=read/, "the audit line names the token by id");
  for (const s of [...Object.values(secrets), "skn_op_guess"]) assert.ok(!text.includes(s));
});

Deno.test("a follower checks the token itself and forwards the header to the leader", async () => {
  const forwarded: Request[] = [];
  const leader = setup();
  const follower = setup({
    node: "cp-2",
    leader: false,
    fetch: (req) => {
      forwarded.push(req);
      return Promise.resolve(leader.app.fetch(req));
    },
  });
  // The follower has its own replicated copy; give it the leader's admin record.
  const adminRec = leader.backend.state().operatorTokens().find((r) => r.role === "admin")!;
  follower.backend.applyDirect({ type: "put_operator_token", record: adminRec });
  const denied = await follower.call("POST", "/v1/operator-tokens", undefined, { role: "read" });
  assert.equal(denied.status, 401);
  assert.equal(forwarded.length, 0, "refused before forwarding");
  const ok = await follower.call("PUT", "/v1/resources", leader.secrets.admin, POLICY);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(forwarded.length, 1);
  assert.equal(forwarded[0]!.headers.get("authorization"), `Bearer ${leader.secrets.admin}`);
  assert.equal(leader.backend.state().listResources().length, 1);
});

Deno.test("a forwarded caller that is revoked on this node is refused, even via a control node", async () => {
  const { createCa, revokeIdentity } = await import("../ca/mod.ts");
  const { call, backend } = setup();
  const now = Date.now();
  const ca = revokeIdentity(await createCa({ trustDomain: "skein.local", now }), LEDGER.uri, {
    now,
    reason: "test",
  });
  backend.applyDirect({
    type: "put_ca",
    ca: ca as unknown as Record<string, unknown>,
    expect_root_id: null,
  });
  const claim = { "x-skein-forwarded-peer": LEDGER.uri };
  const r = await call("GET", "/v1/catalog", undefined, undefined, CP2, claim);
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, "revoked");
  const other = { "x-skein-forwarded-peer": "spiffe://skein.local/svc/payments" };
  assert.equal((await call("GET", "/v1/catalog", undefined, undefined, CP2, other)).status, 200);
});
