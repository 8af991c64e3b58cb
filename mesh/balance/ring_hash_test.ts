import assert from "node:assert/strict";
import { createBalancer } from "./balancer.ts";
import { hashString, RingHashPicker } from "./ring_hash.ts";
import { manualClock } from "../../tests/manual_clock.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { type Endpoint, EndpointState } from "./types.ts";

function ep(key: string, weight = 1): Endpoint {
  return { key, hostname: "127.0.0.1", port: 1, weight, zone: "" };
}

function assign(eps: Endpoint[], keys: string[]): Map<string, string> {
  const b = createBalancer("ring_hash", eps, { now: manualClock().now, random: seededRandom(1) });
  return new Map(keys.map((k) => [k, b.pick(undefined, k)!.key]));
}

const KEYS = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);

Deno.test("hashString is stable and spreads similar strings", () => {
  assert.equal(hashString("abc"), hashString("abc"));
  assert.notEqual(hashString("ep-1#0"), hashString("ep-1#1"));
  let high = 0;
  for (const k of KEYS) if (hashString(k) >= 2 ** 31) high++;
  assert.ok(Math.abs(high / KEYS.length - 0.5) < 0.02);
});

Deno.test("ring_hash sends the same key to the same endpoint", () => {
  const eps = Array.from({ length: 5 }, (_, i) => ep(`ep-${i}`));
  const a = assign(eps, KEYS.slice(0, 500));
  const b = assign([...eps].reverse(), KEYS.slice(0, 500));
  assert.deepEqual(a, b, "order of the catalog does not matter");
});

Deno.test("ring_hash moves about 1/11 of keys when an 11th endpoint joins, all to it", () => {
  const ten = Array.from({ length: 10 }, (_, i) => ep(`10.0.0.${i}:15443`));
  const before = assign(ten, KEYS);
  const after = assign([...ten, ep("10.0.0.99:15443")], KEYS);
  let moved = 0;
  for (const k of KEYS) {
    if (before.get(k) !== after.get(k)) {
      moved++;
      assert.equal(after.get(k), "10.0.0.99:15443", "keys only move to the new endpoint");
    }
  }
  const frac = moved / KEYS.length;
  assert.ok(frac > 1 / 11 - 0.04 && frac < 1 / 11 + 0.04, `moved ${frac}`);
});

Deno.test("ring_hash gives weights via vnode counts", () => {
  const eps = [ep("a", 1), ep("b", 3)];
  const got = assign(eps, KEYS);
  let toB = 0;
  for (const v of got.values()) if (v === "b") toB++;
  const share = toB / KEYS.length;
  assert.ok(Math.abs(share - 0.75) < 0.06, `b share ${share}`);
});

Deno.test("ring_hash walks past excluded endpoints to the next owner on the ring", () => {
  const eps = Array.from({ length: 4 }, (_, i) => ep(`ep-${i}`));
  const b = createBalancer("ring_hash", eps, { now: manualClock().now, random: seededRandom(1) });
  for (const k of KEYS.slice(0, 200)) {
    const first = b.pick(undefined, k)!.key;
    const second = b.pick(new Set([first]), k)!.key;
    assert.notEqual(second, first);
    assert.equal(b.pick(new Set([first]), k)!.key, second, "the fallback is stable too");
  }
  assert.equal(b.pick(new Set(eps.map((e) => e.key)), "x"), null);
});

Deno.test("ring_hash caps the ring size", () => {
  const p = new RingHashPicker(seededRandom(1), { vnodesPerWeight: 160, maxRingSize: 1000 });
  p.rebuild(Array.from({ length: 20 }, (_, i) => new EndpointState(ep(`e${i}`, 1), 0, 0)));
  assert.equal(p.ringSize, 1000);
});

Deno.test("ring_hash without a key falls back to weighted random", () => {
  const b = createBalancer("ring_hash", [ep("a", 1), ep("b", 1)], {
    now: manualClock().now,
    random: seededRandom(2),
  });
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) seen.add(b.pick()!.key);
  assert.equal(seen.size, 2);
});
