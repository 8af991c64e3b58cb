import assert from "node:assert/strict";
import { createBalancer } from "./balancer.ts";
import { manualClock } from "../../tests/manual_clock.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import type { Endpoint } from "./types.ts";

function ep(key: string, weight: number): Endpoint {
  return { key, hostname: "127.0.0.1", port: 1, weight, zone: "" };
}

function counts(b: { pick(): Endpoint | null }, n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const e = b.pick();
    assert.ok(e !== null);
    out.set(e.key, (out.get(e.key) ?? 0) + 1);
  }
  return out;
}

Deno.test("round_robin gives weights 1:2:3 exactly their shares", () => {
  const b = createBalancer("round_robin", [ep("a", 1), ep("b", 2), ep("c", 3)], {
    now: manualClock().now,
    random: seededRandom(1),
  });
  const c = counts(b, 60_000);
  assert.equal(c.get("a"), 10_000);
  assert.equal(c.get("b"), 20_000);
  assert.equal(c.get("c"), 30_000);
});

Deno.test("round_robin is smooth: the nginx sequence for 5:1:1", () => {
  const b = createBalancer("round_robin", [ep("a", 5), ep("b", 1), ep("c", 1)], {
    now: manualClock().now,
    random: seededRandom(1),
  });
  const seq = Array.from({ length: 7 }, () => b.pick()!.key).join("");
  assert.equal(seq, "aabacaa");
});

Deno.test("round_robin skips excluded endpoints and returns null when all are", () => {
  const b = createBalancer("round_robin", [ep("a", 1), ep("b", 1)], {
    now: manualClock().now,
    random: seededRandom(1),
  });
  for (let i = 0; i < 10; i++) assert.equal(b.pick(new Set(["a"]))?.key, "b");
  assert.equal(b.pick(new Set(["a", "b"])), null);
});
