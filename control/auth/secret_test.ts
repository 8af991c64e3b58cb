import assert from "node:assert/strict";
import { findByHash, HashIndex, hashSecret } from "./secret.ts";
import { authenticate, createOperatorToken, type OperatorTokenRecord } from "./operator_token.ts";

const rec = (id: string, secret: string) => ({ id, hash: hashSecret(secret) });

Deno.test("HashIndex.find() agrees with findByHash() for known, unknown and duplicate hashes", () => {
  const records = [rec("a", "skn_op_a"), rec("b", "skn_op_b"), rec("b2", "skn_op_b")];
  const index = new HashIndex(records);
  for (const secret of ["skn_op_a", "skn_op_b", "skn_op_c", "", "skn_op_A"]) {
    assert.equal(index.find(secret), findByHash(records, secret), secret);
  }
  // Duplicates: the first record wins, as in the linear scan.
  assert.equal(index.find("skn_op_b")?.id, "b");
  assert.equal(new HashIndex([]).find("skn_op_a"), undefined);
  assert.equal(index.records, records);
});

Deno.test("authenticate() answers the same with a record list and with its HashIndex", () => {
  const now = 1_000_000;
  const live = createOperatorToken({ name: "ci", role: "operator", now });
  const old = createOperatorToken({ name: "old", role: "admin", now: 0, ttlMs: 10 });
  const records: OperatorTokenRecord[] = [live.record, old.record];
  const index = new HashIndex(records);
  const headers = [
    `Bearer ${live.secret}`,
    `Bearer ${old.secret}`,
    "Bearer skn_op_nope",
    "Basic abc",
    "",
    null,
  ];
  for (const h of headers) {
    assert.deepEqual(authenticate(index, h, now), authenticate(records, h, now), String(h));
  }
  const ok = authenticate(index, `Bearer ${live.secret}`, now);
  assert.ok(ok.ok && ok.record.id === live.record.id);
  assert.deepEqual(authenticate(index, `Bearer ${old.secret}`, now), {
    ok: false,
    reason: "expired",
  });
});
