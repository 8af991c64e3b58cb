import assert from "node:assert/strict";
import { createBalancer } from "./balancer.ts";
import { manualClock } from "../../tests/manual_clock.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import type { Endpoint } from "./types.ts";

function ep(key: string, weight: number): Endpoint {
  return { key, hostname: "127.0.0.1", port: 1, weight, zone: "" };
}

Deno.test("p2c_least_request gives weights 1:2:3 their shares within 3% when idle", () => {
  const b = createBalancer("p2c_least_request", [ep("a", 1), ep("b", 2), ep("c", 3)], {
    now: manualClock().now,
    random: seededRandom(7),
  });
  const n = 60_000;
  const c = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const e = b.pick()!;
    c.set(e.key, (c.get(e.key) ?? 0) + 1);
  }
  for (const [k, want] of [["a", 1 / 6], ["b", 2 / 6], ["c", 3 / 6]] as const) {
    const got = (c.get(k) ?? 0) / n;
    assert.ok(Math.abs(got - want) < 0.03, `${k}: share ${got}, want ${want}`);
  }
});

Deno.test("p2c_least_request prefers the least loaded endpoint", () => {
  const eps = [ep("a", 1), ep("b", 1), ep("c", 1), ep("d", 1)];
  const b = createBalancer("p2c_least_request", eps, {
    now: manualClock().now,
    random: seededRandom(3),
  });
  // a carries 10 in-flight requests, the others none.
  for (let i = 0; i < 10; i++) b.onStart(eps[0]!);
  let toA = 0;
  const n = 10_000;
  for (let i = 0; i < n; i++) if (b.pick()!.key === "a") toA++;
  // The two candidates are always distinct, so a loaded endpoint never beats an idle one.
  assert.equal(toA, 0);
  // Now b is the only idle one: it wins whenever drawn, i.e. 1 - (3/4 * 2/3) = 1/2 of picks.
  for (let i = 0; i < 10; i++) b.onStart(eps[2]!), b.onStart(eps[3]!);
  let toB = 0;
  for (let i = 0; i < n; i++) if (b.pick()!.key === "b") toB++;
  assert.ok(Math.abs(toB / n - 0.5) < 0.03, `idle endpoint got ${toB / n}`);
});

Deno.test("p2c_least_request balances in-flight load under a steady stream", () => {
  const eps = [ep("a", 1), ep("b", 1), ep("c", 2)];
  const b = createBalancer("p2c_least_request", eps, {
    now: manualClock().now,
    random: seededRandom(11),
  });
  // Requests never end: the active counts must stay roughly proportional to weight.
  for (let i = 0; i < 4000; i++) b.onStart(b.pick()!);
  const active = new Map(b.stats().map((s) => [s.endpoint.key, s.active]));
  const perWeightA = active.get("a")!;
  const perWeightC = active.get("c")! / 2;
  assert.ok(Math.abs(perWeightA - perWeightC) <= 3, `a=${perWeightA} c/2=${perWeightC}`);
});

Deno.test("p2c_least_request honours exclusions", () => {
  const b = createBalancer("p2c_least_request", [ep("a", 1), ep("b", 5), ep("c", 1)], {
    now: manualClock().now,
    random: seededRandom(5),
  });
  const ex = new Set(["b", "c"]);
  for (let i = 0; i < 100; i++) assert.equal(b.pick(ex)?.key, "a");
  assert.equal(b.pick(new Set(["a", "b", "c"])), null);
});
