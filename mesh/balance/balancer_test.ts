import assert from "node:assert/strict";
import { createBalancer, NoHealthyEndpointError } from "./balancer.ts";
import { manualClock } from "../../tests/manual_clock.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { BALANCER_POLICIES, type Endpoint, type EndpointHealth } from "./types.ts";

function ep(key: string, zone = "", health: EndpointHealth = "passing", weight = 1): Endpoint {
  return { key, hostname: "127.0.0.1", port: 1, weight, zone, health };
}

function shares(pick: () => Endpoint | null, n: number, by: (e: Endpoint) => string) {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const e = pick();
    assert.ok(e !== null);
    const k = by(e);
    out.set(k, (out.get(k) ?? 0) + 1 / n);
  }
  return out;
}

for (const policy of BALANCER_POLICIES) {
  Deno.test(`${policy}: only passing endpoints with positive weight get traffic`, () => {
    const b = createBalancer(policy, [
      ep("ok"),
      ep("warn", "", "warning"),
      ep("crit", "", "critical"),
      ep("drained", "", "passing", 0),
    ], { now: manualClock().now, random: seededRandom(1) });
    assert.equal(b.eligibleCount(), 1);
    for (let i = 0; i < 200; i++) assert.equal(b.pick(undefined, `k${i}`)?.key, "ok");
  });

  Deno.test(`${policy}: an ejected endpoint gets no traffic until restored`, () => {
    const b = createBalancer(policy, [ep("a"), ep("b")], {
      now: manualClock().now,
      random: seededRandom(2),
    });
    b.setEjected("a", true);
    for (let i = 0; i < 100; i++) assert.equal(b.pick(undefined, `k${i}`)?.key, "b");
    b.setEjected("a", false);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(b.pick(undefined, `k${i}`)!.key);
    assert.equal(seen.size, 2);
  });

  Deno.test(`${policy}: prefers the local zone while it is healthy`, () => {
    const b = createBalancer(policy, [ep("l1", "z1"), ep("l2", "z1"), ep("r1", "z2")], {
      now: manualClock().now,
      random: seededRandom(3),
      localZone: "z1",
    });
    assert.equal(b.localShare(), 1);
    for (let i = 0; i < 300; i++) assert.equal(b.pick(undefined, `k${i}`)!.zone, "z1");
    // Retrying after both local endpoints failed spills to the other zone.
    assert.equal(b.pick(new Set(["l1", "l2"]), "k")?.key, "r1");
  });
}

Deno.test("locality spills in proportion when the local healthy share is below the threshold", () => {
  const local = [ep("l1", "z1"), ep("l2", "z1"), ep("l3", "z1"), ep("l4", "z1", "critical")];
  const remote = [ep("r1", "z2"), ep("r2", "z3")];
  const b = createBalancer("round_robin", [...local, ...remote], {
    now: manualClock().now,
    random: seededRandom(4),
    localZone: "z1",
    failoverBelowHealthyPercent: 100,
  });
  // 3 of 4 local endpoints are healthy: 75% of a 100% threshold stays local.
  assert.equal(b.localShare(), 0.75);
  const s = shares(() => b.pick(), 40_000, (e) => e.zone);
  assert.ok(Math.abs(s.get("z1")! - 0.75) < 0.02, `local share ${s.get("z1")}`);
  assert.ok(Math.abs(s.get("z2")! - 0.125) < 0.02);
});

Deno.test("locality does not spill at or above the threshold (70% default)", () => {
  const eps = [
    ...Array.from({ length: 7 }, (_, i) => ep(`l${i}`, "z1")),
    ...Array.from({ length: 3 }, (_, i) => ep(`d${i}`, "z1", "critical")),
    ep("r", "z2"),
  ];
  const b = createBalancer("p2c_least_request", eps, {
    now: manualClock().now,
    random: seededRandom(5),
    localZone: "z1",
  });
  assert.equal(b.localShare(), 1);
  b.update(eps.map((e) => (e.key === "l0" ? ep("l0", "z1", "critical") : e)));
  assert.ok(Math.abs(b.localShare() - 60 / 70) < 1e-9);
});

Deno.test("locality sends everything away from a local zone with no healthy endpoint", () => {
  const b = createBalancer("ewma", [ep("l", "z1", "critical"), ep("r", "z2")], {
    now: manualClock().now,
    random: seededRandom(6),
    localZone: "z1",
  });
  assert.equal(b.localShare(), 0);
  assert.equal(b.pick()?.key, "r");
});

Deno.test("prefer_zone false and an empty local zone use one tier", () => {
  const eps = [ep("a", "z1"), ep("b", "z2")];
  for (const opts of [{ localZone: "z1", preferZone: false }, { localZone: "" }]) {
    const b = createBalancer("round_robin", eps, {
      now: manualClock().now,
      random: seededRandom(7),
      ...opts,
    });
    const s = shares(() => b.pick(), 100, (e) => e.key);
    assert.equal(s.size, 2);
  }
});

Deno.test("update keeps the stats of endpoints that stay and drops the rest", () => {
  const clock = manualClock();
  const b = createBalancer("ewma", [ep("a"), ep("b")], { now: clock.now, random: seededRandom(8) });
  const a = b.pick(new Set(["b"]))!;
  b.onStart(a);
  b.onStart(a);
  b.onEnd(a, 37, true);
  b.setEjected("b", true);
  b.update([ep("a"), ep("b"), ep("c"), ep("a")]);
  const st = new Map(b.stats().map((s) => [s.endpoint.key, s]));
  assert.equal(st.size, 3, "duplicate keys are dropped");
  assert.equal(st.get("a")!.active, 1);
  assert.equal(st.get("a")!.ewmaMs, 37);
  assert.equal(st.get("b")!.ejected, true, "ejection survives a catalog update");
  assert.equal(st.get("c")!.active, 0);
  b.update([ep("c")]);
  // A request that ends after its endpoint left the catalog is ignored.
  b.onEnd(a, 10, true);
  assert.deepEqual(b.stats().map((s) => s.endpoint.key), ["c"]);
});

Deno.test("pick returns null for an empty catalog and the error explains it", () => {
  const b = createBalancer("p2c_least_request", [], {
    now: manualClock().now,
    random: seededRandom(9),
  });
  assert.equal(b.pick(), null);
  const err = new NoHealthyEndpointError("ledger", 0, 0);
  assert.equal(err.status, 503);
  assert.match(err.message, /ledger/);
});
