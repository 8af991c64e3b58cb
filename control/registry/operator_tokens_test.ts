import assert from "node:assert/strict";
import { authenticate, BOOTSTRAP_TOKEN_ID_PREFIX, createOperatorToken } from "../auth/mod.ts";
import { decodeCommand, encodeCommand, type RegistryCommand } from "./commands.ts";
import { MAX_REVOKED_OPERATOR_HASHES, RegistryState } from "./state.ts";

const NOW = Date.UTC(2026, 0, 1);

/** Applies through encode/decode, as a follower does from the log. */
function applyAll(st: RegistryState, cmds: RegistryCommand[]) {
  return cmds.map((c) => st.apply(st.appliedIndex + 1, decodeCommand(encodeCommand(c))));
}

Deno.test("put_operator_token stores only the hash; the secret then authenticates", () => {
  const st = new RegistryState();
  const { secret, record } = createOperatorToken({ name: "ci", role: "operator", now: NOW });
  const [r] = applyAll(st, [{ type: "put_operator_token", record }]);
  assert.ok(r?.ok);
  assert.equal(st.operatorTokens().length, 1);
  assert.ok(!new TextDecoder().decode(st.snapshot()).includes(secret));
  const a = authenticate(st.operatorTokens(), `Bearer ${secret}`, NOW + 1);
  assert.ok(a.ok && a.record.role === "operator");
  assert.equal(st.operatorTokenStatus(record.hash), "active");
  // The same hash or id twice is refused, so two leaders registering one bootstrap file agree.
  const again = createOperatorToken({ name: "ci", role: "admin", now: NOW });
  const [dupHash, dupId] = applyAll(st, [
    { type: "put_operator_token", record: { ...again.record, hash: record.hash } },
    { type: "put_operator_token", record: { ...again.record, id: record.id } },
  ]);
  assert.ok(dupHash && !dupHash.ok && dupHash.error.code === "token_exists");
  assert.ok(dupId && !dupId.ok && dupId.error.code === "token_exists");
});

Deno.test("revoke_operator_token removes a token and refuses its hash from then on", () => {
  const st = new RegistryState();
  const { secret, record } = createOperatorToken({ name: "bootstrap", role: "admin", now: NOW });
  applyAll(st, [{ type: "put_operator_token", record }]);
  const [gone, missing] = applyAll(st, [
    { type: "revoke_operator_token", id: record.id },
    { type: "revoke_operator_token", id: record.id },
  ]);
  assert.ok(gone?.ok);
  assert.ok(missing && !missing.ok && missing.error.code === "not_found");
  assert.equal(authenticate(st.operatorTokens(), `Bearer ${secret}`, NOW).ok, false);
  assert.equal(st.operatorTokenStatus(record.hash), "revoked");
  // A node re-registering its bootstrap file after the revocation must not bring it back.
  const [re] = applyAll(st, [{ type: "put_operator_token", record: { ...record, id: "new1" } }]);
  assert.ok(re && !re.ok && re.error.code === "token_revoked");
  assert.equal(st.operatorTokens().length, 0);
});

Deno.test("operator tokens and revocations survive snapshot and restore", () => {
  const st = new RegistryState();
  const a = createOperatorToken({ name: "a", role: "read", now: NOW, ttlMs: 60_000 });
  const b = createOperatorToken({ name: "b", role: "admin", now: NOW });
  applyAll(st, [
    { type: "put_operator_token", record: a.record },
    { type: "put_operator_token", record: b.record },
    { type: "revoke_operator_token", id: b.record.id },
  ]);
  const back = RegistryState.restore(st.snapshot());
  assert.deepEqual(back.operatorTokens(), [a.record]);
  assert.equal(back.operatorTokenStatus(b.record.hash), "revoked");
  assert.deepEqual(back.snapshot(), st.snapshot());
});

Deno.test("put_operator_token drops records that expired before the new one was created", () => {
  const st = new RegistryState();
  const old = createOperatorToken({ name: "old", role: "read", now: NOW, ttlMs: 1000 });
  const fresh = createOperatorToken({ name: "new", role: "read", now: NOW + 5000 });
  applyAll(st, [
    { type: "put_operator_token", record: old.record },
    { type: "put_operator_token", record: fresh.record },
  ]);
  assert.deepEqual(st.operatorTokens().map((r) => r.name), ["new"]);
});

Deno.test("a revoked bootstrap token stays revoked however many revocations follow", () => {
  const st = new RegistryState();
  const boot = createOperatorToken({ name: "bootstrap cp-1", role: "admin", now: NOW });
  // As a control node registers its bootstrap file.
  const bootRecord = {
    ...boot.record,
    id: `${BOOTSTRAP_TOKEN_ID_PREFIX}${boot.record.hash.slice(0, 16)}`,
  };
  applyAll(st, [
    { type: "put_operator_token", record: bootRecord },
    { type: "revoke_operator_token", id: bootRecord.id },
  ]);
  // More revocations of ordinary tokens than the ordinary list keeps.
  for (let i = 0; i < MAX_REVOKED_OPERATOR_HASHES + 5; i++) {
    const t = createOperatorToken({ name: `ci-${i}`, role: "read", now: NOW, ttlMs: 60_000 });
    const [put, rev] = applyAll(st, [
      { type: "put_operator_token", record: t.record },
      { type: "revoke_operator_token", id: t.record.id },
    ]);
    assert.ok(put?.ok && rev?.ok);
  }
  assert.equal(st.operatorTokenStatus(bootRecord.hash), "revoked");
  const [again] = applyAll(st, [{ type: "put_operator_token", record: bootRecord }]);
  assert.ok(again && !again.ok && again.error.code === "token_revoked");
  assert.equal(authenticate(st.operatorTokens(), `Bearer ${boot.secret}`, NOW).ok, false);
  // And across a snapshot.
  const back = RegistryState.restore(st.snapshot());
  assert.equal(back.operatorTokenStatus(bootRecord.hash), "revoked");
  assert.deepEqual(back.snapshot(), st.snapshot());
});
