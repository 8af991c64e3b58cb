import assert from "node:assert/strict";
import { memoryLogger } from "../../common/log.ts";
import { createOfflineRootCa, signIntermediate } from "../ca/mod.ts";
import { createOperatorToken } from "../auth/mod.ts";
import { createApi } from "./app.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { operatorAuthorizer } from "./operator_auth.ts";

async function setup() {
  const now = Date.now();
  const backend = new FakeBackend();
  const made = await createOfflineRootCa({ trustDomain: "skein.local", now });
  backend.applyDirect({
    type: "put_ca",
    ca: made.state as unknown as Record<string, unknown>,
    expect_root_id: null,
  });
  const admin = createOperatorToken({ name: "adm", role: "admin", now });
  const op = createOperatorToken({ name: "op", role: "operator", now });
  backend.applyDirect({ type: "put_operator_token", record: admin.record });
  backend.applyDirect({ type: "put_operator_token", record: op.record });
  const log = memoryLogger();
  const app = createApi(backend, {
    logger: log,
    authorize: operatorAuthorizer({ tokens: () => backend.state().operatorTokens(), log }),
  });
  const call = async (path: string, body?: unknown, token = admin.secret) => {
    const res = await app.request(path, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    assert.ok(!text.includes("PRIVATE KEY"), `${path} leaked a key`);
    return { status: res.status, json: JSON.parse(text), text };
  };
  return { backend, call, made, op, app };
}

Deno.test("distrust-intermediate: refusals commit nothing; --now distrusts the rotated-out one and the catalog carries it", async () => {
  const { backend, call, made, op, app } = await setup();
  const old = made.state.roots[0]!.intermediate!;
  // Nothing rotated out yet: the only intermediate is the active one.
  const active = await call("/v1/ca/distrust-intermediate", { intermediate: old.id });
  assert.equal(active.status, 409, active.text);
  assert.equal(active.json.error.code, "intermediate_active");

  const next = await signIntermediate({
    rootCertPem: made.root.certPem,
    rootKeyPem: made.root.keyPem,
    now: Date.now(),
  });
  const installed = await call("/v1/ca/rotate", {
    intermediate_cert_pem: next.certPem,
    intermediate_key_pem: next.keyPem,
  });
  assert.equal(installed.status, 200, installed.text);
  assert.equal(installed.json.ca.retiredIntermediates[0].id, old.id);
  const newId = backend.state().ca()!.roots[0]!.intermediate!.id;

  const cases: [unknown, number, string][] = [
    [{ intermediate: newId }, 409, "intermediate_active"],
    [{ intermediate: "abcdef0123" }, 404, "unknown_intermediate"],
    [{ intermediate: "not hex!" }, 400, "invalid_request"],
    [{ intermediate: old.id, extra: 1 }, 400, "invalid_request"],
    [{}, 400, "invalid_request"],
    // Leaves it signed a moment ago are still valid, and no member has said where it stands.
    [{ intermediate: old.id }, 409, "intermediate_in_use"],
  ];
  const index = backend.state().index;
  for (const [body, status, code] of cases) {
    const r = await call("/v1/ca/distrust-intermediate", body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error.code, code, r.text);
  }
  const inUse = await call("/v1/ca/distrust-intermediate", { intermediate: old.id });
  assert.match(inUse.json.error.message, /stay valid until .*--now/);
  assert.equal(backend.state().index, index, "no refusal committed anything");
  assert.equal(backend.state().ca()!.retiredIntermediates![0]!.distrustedAt, null);
  assert.deepEqual(backend.state().catalog().trust.distrusted, []);

  const byOperator = await call(
    "/v1/ca/distrust-intermediate",
    { intermediate: old.id, now: true },
    op.secret,
  );
  assert.equal(byOperator.status, 403, "admin only");

  const now = await call("/v1/ca/distrust-intermediate", { intermediate: old.id, now: true });
  assert.equal(now.status, 200, now.text);
  assert.equal(now.json.changed, true);
  assert.ok(now.json.ca.retiredIntermediates[0].distrustedAt > 0);
  assert.deepEqual(backend.state().catalog().trust.distrusted, [old.certPem]);
  const roots = await app.request("/v1/ca/roots");
  const listed = (await roots.json()).retired_intermediates;
  assert.equal(listed.length, 1);
  assert.equal(listed[0].id, old.id);
  assert.match(listed[0].distrusted_at, /^\d{4}-\d\d-\d\dT/);
  const again = await call("/v1/ca/distrust-intermediate", { intermediate: old.id });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.changed, false);
});
