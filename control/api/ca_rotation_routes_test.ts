import assert from "node:assert/strict";
import { memoryLogger } from "../../common/log.ts";
import { createCa } from "../ca/mod.ts";
import { createOperatorToken } from "../auth/mod.ts";
import { createApi } from "./app.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { operatorAuthorizer } from "./operator_auth.ts";

async function setup() {
  const now = Date.now();
  const backend = new FakeBackend();
  const ca = await createCa({ trustDomain: "skein.local", now });
  backend.applyDirect({
    type: "put_ca",
    ca: ca as unknown as Record<string, unknown>,
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
  return { backend, call, firstRoot: ca.activeRootId, op, log };
}

Deno.test("CA rotation routes: trust first, then activate, then finish, each a CAS put_ca", async () => {
  const { backend, call, firstRoot, op, log } = await setup();
  assert.equal((await call("/v1/ca/rotate", {}, op.secret)).status, 403);

  const rotated = await call("/v1/ca/rotate", {});
  assert.equal(rotated.status, 200, rotated.text);
  assert.equal(rotated.json.ca.activeRootId, firstRoot, "activate defaults to false");
  assert.equal(rotated.json.ca.roots.length, 2);
  const newRoot = rotated.json.ca.roots.find((r: { id: string }) => r.id !== firstRoot).id;
  assert.equal(backend.state().ca()?.roots.length, 2);
  const cas = backend.proposed.at(-1) as { type: string; expect_root_id: string };
  assert.equal(cas.type, "put_ca");
  assert.equal(cas.expect_root_id, firstRoot);

  const again = await call("/v1/ca/rotate", { activate: true });
  assert.equal(again.status, 409);
  assert.equal(again.json.error.code, "rotation_in_progress");

  assert.equal((await call("/v1/ca/activate", { root_id: "abcdef" })).status, 404);
  assert.equal((await call("/v1/ca/activate", { root_id: "not hex" })).status, 400);
  const activated = await call("/v1/ca/activate", { root_id: newRoot });
  assert.equal(activated.status, 200, activated.text);
  assert.equal(backend.state().ca()?.activeRootId, newRoot);

  const finished = await call("/v1/ca/finish");
  assert.equal(finished.status, 200, finished.text);
  assert.deepEqual(finished.json.ca.roots.map((r: { id: string }) => r.id), [newRoot]);
  assert.equal(backend.state().ca()?.roots.length, 1);
  const noop = await call("/v1/ca/finish", {});
  assert.equal(noop.json.changed, false);
  assert.ok(!log.lines.join("\n").includes("PRIVATE KEY"));
});

Deno.test("rotate with activate: true signs with the new root at once", async () => {
  const { backend, call, firstRoot } = await setup();
  const r = await call("/v1/ca/rotate", { activate: true });
  assert.equal(r.status, 200, r.text);
  assert.notEqual(backend.state().ca()?.activeRootId, firstRoot);
  assert.equal(r.json.ca.roots[0].id, backend.state().ca()?.activeRootId);
});

Deno.test("a CA change whose compare-and-set lost is a 409, not a silent overwrite", async () => {
  const { backend, call } = await setup();
  // Another leader's rotation lands between our read and our commit.
  const realPropose = backend.propose.bind(backend);
  backend.propose = async (cmd, signal, caller) => {
    if (cmd.type === "put_ca") {
      const cur = backend.state().ca()!;
      const other = await createCa({ trustDomain: "skein.local", now: Date.now() });
      backend.applyDirect({
        type: "put_ca",
        ca: other as unknown as Record<string, unknown>,
        expect_root_id: cur.activeRootId,
      });
    }
    return realPropose(cmd, signal, caller);
  };
  const r = await call("/v1/ca/rotate", {});
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, "ca_conflict");
});

Deno.test("a revocation committed between a rotation's read and its commit is not undone", async () => {
  // A compare-and-set on the active root alone would let a rotation computed before a
  // revocation pass and write back the state without that revocation.
  const { backend, call } = await setup();
  const realPropose = backend.propose.bind(backend);
  let interleaved = false;
  backend.propose = (cmd, signal, caller) => {
    if (cmd.type === "put_ca" && !interleaved) {
      interleaved = true;
      backend.applyDirect({
        type: "revoke_identity",
        spiffe_id: "spiffe://skein.local/svc/stolen",
        now: Date.now(),
        reason: "key leaked",
      });
    }
    return realPropose(cmd, signal, caller);
  };
  const r = await call("/v1/ca/rotate", {});
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.error.code, "ca_conflict");
  assert.equal(backend.state().ca()?.roots.length, 1, "nothing half-rotated committed");
  assert.deepEqual(backend.state().ca()?.revoked.map((x) => x.spiffeId), [
    "spiffe://skein.local/svc/stolen",
  ]);
  const again = await call("/v1/ca/rotate", {});
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.ca.rotation.phase, "trust", "the leader carries it from here");
  assert.equal(backend.state().ca()?.revoked.length, 1, "the retry kept the revocation");
});
