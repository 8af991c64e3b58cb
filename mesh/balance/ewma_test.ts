import assert from "node:assert/strict";
import { createBalancer } from "./balancer.ts";
import { decayedEwmaMs, observeEwma } from "./ewma.ts";
import { manualClock } from "../../tests/manual_clock.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { type Endpoint, EndpointState } from "./types.ts";

function ep(key: string, weight = 1): Endpoint {
  return { key, hostname: "127.0.0.1", port: 1, weight, zone: "" };
}

Deno.test("observeEwma jumps to a slower sample and decays towards faster ones", () => {
  const s = new EndpointState(ep("a"), 0, 1000);
  observeEwma(s, 0, 40, 1000);
  assert.equal(s.ewmaMs, 40, "the first sample replaces the new-endpoint penalty");
  observeEwma(s, 0, 100, 1000);
  assert.equal(s.ewmaMs, 100);
  observeEwma(s, 1000, 10, 1000);
  // prior decays to 100/e, then blends with weight 1/e towards 10.
  const prior = 100 * Math.exp(-1);
  assert.ok(Math.abs(s.ewmaMs - (prior * Math.exp(-1) + 10 * (1 - Math.exp(-1)))) < 1e-9);
  assert.ok(s.ewmaMs < 100 && s.ewmaMs > 10);
});

Deno.test("decayedEwmaMs decays an idle estimate towards zero", () => {
  const s = new EndpointState(ep("a"), 0, 500);
  assert.equal(decayedEwmaMs(s, 0, 1000), 500);
  assert.ok(decayedEwmaMs(s, 5000, 1000) < 500 * 0.01);
});

/** Drives a closed-loop simulation: `concurrency` requests always in flight. */
function simulate(policy: "ewma" | "p2c_least_request", latency: Record<string, number>) {
  const clock = manualClock();
  const eps = Object.keys(latency).map((k) => ep(k));
  const b = createBalancer(policy, eps, {
    now: clock.now,
    random: seededRandom(42),
    ewmaDecayMs: 1000,
    ewmaPenaltyMs: 50,
  });
  const concurrency = 8;
  const inflight: { end: number; ep: Endpoint; start: number }[] = [];
  const served = new Map<string, number>();
  const start = () => {
    const e = b.pick()!;
    b.onStart(e);
    inflight.push({ end: clock.now() + latency[e.key]!, ep: e, start: clock.now() });
  };
  for (let i = 0; i < concurrency; i++) start();
  for (let done = 0; done < 20_000; done++) {
    inflight.sort((x, y) => x.end - y.end);
    const r = inflight.shift()!;
    clock.advance(r.end - clock.now());
    b.onEnd(r.ep, clock.now() - r.start, true);
    served.set(r.ep.key, (served.get(r.ep.key) ?? 0) + 1);
    start();
  }
  return served;
}

Deno.test("ewma shifts load away from a slow endpoint", () => {
  const served = simulate("ewma", { fast1: 10, fast2: 10, slow: 100 });
  const total = [...served.values()].reduce((a, b) => a + b, 0);
  const slowShare = (served.get("slow") ?? 0) / total;
  assert.ok(slowShare < 0.05, `slow endpoint served ${slowShare}`);
  assert.ok((served.get("slow") ?? 0) > 0, "the slow endpoint is still probed");
});

Deno.test("ewma puts a failing-fast endpoint at least at the penalty", () => {
  const clock = manualClock();
  const eps = [ep("a"), ep("b")];
  const b = createBalancer("ewma", eps, {
    now: clock.now,
    random: seededRandom(9),
    ewmaPenaltyMs: 1000,
  });
  b.onStart(eps[0]!);
  b.onEnd(eps[0]!, 1, false);
  b.onStart(eps[1]!);
  b.onEnd(eps[1]!, 20, true);
  const stats = new Map(b.stats().map((s) => [s.endpoint.key, s.ewmaMs]));
  assert.equal(stats.get("a"), 1000);
  assert.equal(stats.get("b"), 20);
  let toA = 0;
  for (let i = 0; i < 1000; i++) if (b.pick()!.key === "a") toA++;
  assert.equal(toA, 0, "with two endpoints p2c always compares both, so a always loses");
});
