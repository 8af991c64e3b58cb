import assert from "node:assert/strict";
import { type CaState, createCa } from "../ca/mod.ts";
import { createJoinToken, redeem } from "../auth/mod.ts";
import { decodeCommand, encodeCommand, type RegistryCommand } from "./commands.ts";
import { RegistryState } from "./state.ts";
import { StateIndexes } from "./apply_result.ts";
import { Credentials } from "./credentials.ts";

const NOW = Date.UTC(2026, 0, 1);
const TD = "skein.local";

let _ca: CaState | null = null;
async function ca(): Promise<CaState> {
  _ca ??= await createCa({ trustDomain: TD, now: NOW });
  return _ca;
}

/** Applies through encode/decode, as a follower does from the log. */
function applyAll(st: RegistryState, cmds: RegistryCommand[]) {
  return cmds.map((c) => st.apply(st.appliedIndex + 1, decodeCommand(encodeCommand(c))));
}

Deno.test("put_ca stores the CA once; a second bootstrap is refused, a matching CAS replaces it", async () => {
  const st = new RegistryState();
  const first = await ca();
  const [r1] = applyAll(st, [{ type: "put_ca", ca: { ...first }, expect_root_id: null }]);
  assert.ok(r1?.ok);
  assert.equal(st.ca()?.activeRootId, first.activeRootId);
  assert.equal(st.index, r1.index, "a CA change moves the catalog index");
  // The apply result goes back to API callers: it must not carry the key.
  assert.ok(!JSON.stringify(r1).includes("PRIVATE KEY"));

  const other = await createCa({ trustDomain: TD, now: NOW });
  const [r2] = applyAll(st, [{ type: "put_ca", ca: { ...other }, expect_root_id: null }]);
  assert.ok(r2 && !r2.ok && r2.error.code === "ca_exists");
  assert.equal(st.ca()?.activeRootId, first.activeRootId);

  const [r3] = applyAll(st, [{ type: "put_ca", ca: { ...other }, expect_root_id: "ffff" }]);
  assert.ok(r3 && !r3.ok && r3.error.code === "ca_conflict");

  const [r4] = applyAll(st, [{
    type: "put_ca",
    ca: { ...other },
    expect_root_id: first.activeRootId,
  }]);
  assert.ok(r4?.ok);
  assert.equal(st.ca()?.activeRootId, other.activeRootId);
});

Deno.test("put_ca with a malformed state is refused and leaves no CA", () => {
  const st = new RegistryState();
  const [r] = applyAll(st, [{ type: "put_ca", ca: { version: 1 }, expect_root_id: null }]);
  assert.ok(r && !r.ok && r.error.code === "invalid_ca");
  assert.equal(st.ca(), null);
});

Deno.test("consume_join_token applies deterministically: uses run out, expiry uses the command's time", () => {
  const st = new RegistryState();
  const { secret, record } = createJoinToken({
    service: "payments",
    ttlMs: 60_000,
    uses: 2,
    now: NOW,
  });
  applyAll(st, [{ type: "create_join_token", record }]);
  assert.equal(st.joinTokens().length, 1);
  assert.ok(!JSON.stringify(st.joinTokens()).includes(secret), "only the hash is stored");
  const check = redeem(st.joinTokens(), secret, NOW + 1);
  assert.ok(check.ok);

  const consume = (now: number) =>
    applyAll(st, [{ type: "consume_join_token", id: record.id, now }])[0]!;
  const a = consume(NOW + 1);
  assert.ok(a.ok && a.value.type === "consume_join_token");
  assert.equal(a.value.service, "payments");
  assert.equal(a.value.usesLeft, 1);
  const late = consume(NOW + 60_000);
  assert.ok(!late.ok && late.error.code === "join_token_expired");
  const b = consume(NOW + 2);
  assert.ok(b.ok);
  const c = consume(NOW + 3);
  assert.ok(!c.ok && c.error.code === "join_token_used_up");
  const unknown = applyAll(st, [{ type: "consume_join_token", id: "nope", now: NOW }])[0]!;
  assert.ok(!unknown.ok && unknown.error.code === "join_token_unknown");
});

Deno.test("create_join_token refuses a duplicate id and prunes long-expired records", () => {
  const st = new RegistryState();
  const old = createJoinToken({ service: "a", ttlMs: 1000, now: NOW }).record;
  applyAll(st, [{ type: "create_join_token", record: old }]);
  const dup = applyAll(st, [{ type: "create_join_token", record: old }])[0]!;
  assert.ok(!dup.ok && dup.error.code === "token_exists");
  const later = createJoinToken({ service: "b", ttlMs: 1000, now: NOW + 2 * 86_400_000 }).record;
  applyAll(st, [{ type: "create_join_token", record: later }]);
  assert.deepEqual(st.joinTokens().map((r) => r.service), ["b"]);
});

Deno.test("revoke_identity needs a CA, checks the id and is idempotent", async () => {
  const st = new RegistryState();
  const id = `spiffe://${TD}/svc/payments`;
  const none = applyAll(st, [{ type: "revoke_identity", spiffe_id: id, now: NOW, reason: "" }])[0]!;
  assert.ok(!none.ok && none.error.code === "no_ca");
  applyAll(st, [{ type: "put_ca", ca: { ...(await ca()) }, expect_root_id: null }]);
  const bad = applyAll(st, [{
    type: "revoke_identity",
    spiffe_id: "spiffe://other.domain/svc/x",
    now: NOW,
    reason: "",
  }])[0]!;
  assert.ok(!bad.ok && bad.error.code === "invalid_identity");
  const r1 = applyAll(st, [{
    type: "revoke_identity",
    spiffe_id: id,
    now: NOW,
    reason: "lost",
  }])[0]!;
  assert.ok(r1.ok && r1.value.type === "revoke_identity" && r1.value.changed);
  const r2 = applyAll(st, [{ type: "revoke_identity", spiffe_id: id, now: NOW, reason: "" }])[0]!;
  assert.ok(r2.ok && r2.value.type === "revoke_identity" && !r2.value.changed);
  assert.deepEqual(st.ca()?.revoked.map((r) => r.spiffeId), [id]);
});

Deno.test("snapshots carry the CA and join tokens; old snapshots without them still restore", async () => {
  const st = new RegistryState();
  const { record } = createJoinToken({ service: "payments", ttlMs: 60_000, now: NOW });
  const theCa = await ca();
  applyAll(st, [
    { type: "put_ca", ca: { ...theCa }, expect_root_id: null },
    { type: "create_join_token", record },
    { type: "revoke_identity", spiffe_id: `spiffe://${TD}/svc/x`, now: NOW, reason: "" },
  ]);
  const bytes = st.snapshot();
  const back = RegistryState.restore(bytes);
  assert.deepEqual(back.ca(), st.ca());
  assert.deepEqual(back.joinTokens(), st.joinTokens());
  assert.deepEqual(back.snapshot(), bytes);
  // A follower restored from the snapshot refuses a second bootstrap just like the leader.
  const r = back.apply(back.appliedIndex + 1, {
    type: "put_ca",
    ca: { ...theCa },
    expect_root_id: null,
  });
  assert.ok(!r.ok && r.error.code === "ca_exists");

  const plain = new RegistryState().snapshot();
  assert.ok(!new TextDecoder().decode(plain).includes("join_tokens"));
  assert.equal(RegistryState.restore(plain).ca(), null);
});

Deno.test("a snapshot with a corrupt CA is refused", async () => {
  const st = new RegistryState();
  applyAll(st, [{ type: "put_ca", ca: { ...(await ca()) }, expect_root_id: null }]);
  const json = JSON.parse(new TextDecoder().decode(st.snapshot()));
  json.ca.activeRootId = "00";
  assert.throws(
    () => RegistryState.restore(new TextEncoder().encode(JSON.stringify(json))),
    /ca: /,
  );
});

Deno.test("Credentials move the catalog index for trust changes only, not for token records", async () => {
  const at = new StateIndexes();
  const cr = new Credentials(at);
  const tok = createJoinToken({ service: "api", ttlMs: 60_000, uses: 1, now: NOW });
  assert.ok(cr.createJoinToken(1, tok.record).ok);
  assert.equal(at.catalog, 0);
  const noCa = cr.revokeIdentity(2, `spiffe://${TD}/svc/api`, NOW, "");
  assert.ok(!noCa.ok && noCa.error.code === "no_ca");
  const c = await ca();
  assert.ok(cr.putCa(3, c, null, undefined).ok);
  assert.equal(at.catalog, 3);
  assert.ok(cr.revokeIdentity(4, `spiffe://${TD}/svc/api`, NOW, "").ok);
  assert.equal(at.catalog, 4);
  assert.deepEqual(cr.trust().revoked, [`spiffe://${TD}/svc/api`]);
  assert.deepEqual(Object.keys(cr.snapshotFields()).sort(), ["ca", "join_tokens"]);
});
