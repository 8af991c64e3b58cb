import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  addJoinToken,
  consumeJoinToken,
  createJoinToken,
  deleteJoinToken,
  hashSecret,
  isJoinTokenSecret,
  type JoinTokenRecord,
  pruneJoinTokens,
  publicJoinToken,
  redeem,
} from "./mod.ts";

const NOW = 1_000_000;
const HOUR = 3_600_000;

Deno.test("createJoinToken() returns the secret once and stores only its SHA-256", () => {
  const { secret, record } = createJoinToken({ service: "payments", ttlMs: HOUR, now: NOW });
  assert(isJoinTokenSecret(secret), secret.slice(0, 9));
  assert(secret.length > 40);
  assertEquals(record.hash, hashSecret(secret));
  assert(!JSON.stringify(record).includes(secret));
  assertEquals(record.service, "payments");
  assertEquals(record.expiresAt, NOW + HOUR);
  assertEquals(record.usesLeft, 1);
  assert(!("hash" in publicJoinToken(record)));
});

Deno.test("redeem(): a single-use token used twice is refused as used_up", () => {
  const { secret, record } = createJoinToken({ service: "payments", ttlMs: HOUR, now: NOW });
  const first = redeem([record], secret, NOW + 1);
  assert(first.ok);
  assertEquals(first.record.service, "payments");
  assertEquals(first.usesLeft, 0);
  const second = redeem(first.records, secret, NOW + 2);
  assertEquals(second, { ok: false, reason: "used_up" });
});

Deno.test("redeem(): unknown, expired, and n-use tokens", () => {
  const a = createJoinToken({ service: "a", ttlMs: HOUR, now: NOW, uses: 3 });
  const b = createJoinToken({ service: "b", ttlMs: HOUR, now: NOW });
  let records: JoinTokenRecord[] = addJoinToken(addJoinToken([], a.record), b.record);
  assertEquals(redeem(records, "skn_join_nope", NOW), { ok: false, reason: "unknown" });
  assertEquals(redeem(records, b.secret, NOW + HOUR), { ok: false, reason: "expired" });
  for (const left of [2, 1, 0]) {
    const r = redeem(records, a.secret, NOW);
    assert(r.ok);
    assertEquals(r.usesLeft, left);
    records = r.records;
  }
  assertEquals(redeem(records, a.secret, NOW), { ok: false, reason: "used_up" });
  // The other token was not touched.
  const rb = redeem(records, b.secret, NOW);
  assert(rb.ok && rb.record.service === "b");
});

Deno.test("consumeJoinToken() is the deterministic apply step: one of two racers wins", () => {
  const { record } = createJoinToken({ service: "a", ttlMs: HOUR, now: NOW });
  const one = consumeJoinToken([record], record.id, NOW);
  assert(one.ok);
  assertEquals(consumeJoinToken(one.records, record.id, NOW), { ok: false, reason: "used_up" });
  assertEquals(consumeJoinToken([], record.id, NOW), { ok: false, reason: "unknown" });
});

Deno.test("createJoinToken() refuses bad services, TTLs and use counts", () => {
  assertThrows(() => createJoinToken({ service: "", ttlMs: HOUR, now: NOW }), RangeError);
  assertThrows(() => createJoinToken({ service: "a", ttlMs: 0, now: NOW }), RangeError);
  assertThrows(() => createJoinToken({ service: "a", ttlMs: 8 * 24 * HOUR, now: NOW }), RangeError);
  assertThrows(() => createJoinToken({ service: "a", ttlMs: HOUR, now: NOW, uses: 0 }), RangeError);
});

Deno.test("pruneJoinTokens() keeps records until a day after expiry; delete removes one", () => {
  const a = createJoinToken({ service: "a", ttlMs: HOUR, now: NOW }).record;
  const b = createJoinToken({ service: "b", ttlMs: 2 * HOUR, now: NOW }).record;
  assertEquals(pruneJoinTokens([a, b], NOW + HOUR + 23 * HOUR).length, 2);
  assertEquals(pruneJoinTokens([a, b], NOW + HOUR + 24 * HOUR), [b]);
  assertEquals(deleteJoinToken([a, b], a.id), [b]);
});

Deno.test("join token records are plain JSON", () => {
  const { secret, record } = createJoinToken({ service: "a", ttlMs: HOUR, now: NOW });
  const back = JSON.parse(JSON.stringify([record])) as JoinTokenRecord[];
  assert(redeem(back, secret, NOW).ok);
});
