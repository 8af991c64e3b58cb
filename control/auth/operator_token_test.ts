import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { memoryLogger } from "../../common/log.ts";
import {
  authenticate,
  bearerToken,
  createOperatorToken,
  deleteOperatorToken,
  hashesEqual,
  hashSecret,
  type Role,
  roleAllows,
} from "./mod.ts";

const NOW = 5_000;

Deno.test("authenticate() accepts the bearer secret and returns the record with its role", () => {
  const admin = createOperatorToken({ name: "bootstrap", role: "admin", now: NOW });
  const ci = createOperatorToken({ name: "ci", role: "operator", now: NOW, ttlMs: 1000 });
  const records = [admin.record, ci.record];
  const r = authenticate(records, `Bearer ${ci.secret}`, NOW);
  assert(r.ok);
  assertEquals(r.record.role, "operator");
  const r2 = authenticate(records, `bearer ${admin.secret}`, NOW);
  assert(r2.ok && r2.record.name === "bootstrap");
  assertEquals(authenticate(records, `Bearer ${ci.secret}`, NOW + 1000), {
    ok: false,
    reason: "expired",
  });
  assertEquals(authenticate(records, null, NOW), { ok: false, reason: "missing" });
  assertEquals(authenticate(records, "Basic abc", NOW), { ok: false, reason: "malformed" });
  assertEquals(authenticate(records, "Bearer skn_op_wrong", NOW), { ok: false, reason: "unknown" });
  assertEquals(
    authenticate(deleteOperatorToken(records, ci.record.id), `Bearer ${ci.secret}`, NOW),
    {
      ok: false,
      reason: "unknown",
    },
  );
  assertEquals(ci.record.hash, hashSecret(ci.secret));
  assert(!JSON.stringify(records).includes(ci.secret));
});

Deno.test("bearerToken() parses only well-formed, bounded headers", () => {
  assertEquals(bearerToken("Bearer abc"), "abc");
  assertEquals(bearerToken("Bearer  abc "), "abc");
  assertEquals(bearerToken("Bearer"), null);
  assertEquals(bearerToken("Bearer a b"), null);
  assertEquals(bearerToken("Token abc"), null);
  assertEquals(bearerToken("Bearer " + "a".repeat(600)), null);
});

Deno.test("hashesEqual() compares whole hashes only", () => {
  const h = hashSecret("x");
  assert(hashesEqual(h, h));
  assert(!hashesEqual(h, hashSecret("y")));
  assert(!hashesEqual(h, h.slice(0, 10)));
  assert(!hashesEqual("", ""));
});

Deno.test("roleAllows(): admin ⊃ operator ⊃ read", () => {
  const table: [Role, Role, boolean][] = [
    ["admin", "admin", true],
    ["admin", "operator", true],
    ["admin", "read", true],
    ["operator", "admin", false],
    ["operator", "operator", true],
    ["operator", "read", true],
    ["read", "admin", false],
    ["read", "operator", false],
    ["read", "read", true],
  ];
  for (const [have, need, want] of table) {
    assertEquals(roleAllows(have, need), want, `${have}/${need}`);
  }
});

Deno.test("createOperatorToken() refuses unknown roles and bad names", () => {
  assertThrows(
    () => createOperatorToken({ name: "x", role: "root" as Role, now: NOW }),
    RangeError,
  );
  assertThrows(() => createOperatorToken({ name: "", role: "read", now: NOW }), RangeError);
});

Deno.test("token secrets are redacted by the logger even under an innocent key", () => {
  const { secret } = createOperatorToken({ name: "x", role: "read", now: NOW });
  const log = memoryLogger();
  log.info("oops", { note: `header was Bearer ${secret}`, value: secret });
  assert(!log.lines.join("\n").includes(secret), log.lines.join("\n"));
});
