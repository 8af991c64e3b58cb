import assert from "node:assert/strict";
import { manualClock } from "../../tests/manual_clock.ts";
import { CONNECT_FAILURE, type Outcome, RESET, TIMEOUT } from "./outcome.ts";
import { OutlierDetector, type OutlierEvent, type OutlierOptions } from "./outlier.ts";

const r500: Outcome = { kind: "response", status: 500 };
const r200: Outcome = { kind: "response", status: 200 };
const r404: Outcome = { kind: "response", status: 404 };

function setup(opts: OutlierOptions, keys = ["a", "b", "c", "d"]) {
  const clock = manualClock();
  const events: OutlierEvent[] = [];
  const d = new OutlierDetector(opts, { now: clock.now, onEvent: (e) => events.push(e) });
  d.setEndpoints(keys);
  return { clock, events, d };
}

function times(d: OutlierDetector, key: string, o: Outcome, n: number) {
  for (let i = 0; i < n; i++) d.report(key, o);
}

Deno.test("consecutive 5xx eject; a success in between resets the count", () => {
  const { d, events } = setup({ consecutive5xx: 3, maxEjectionPercent: 50 });
  times(d, "a", r500, 2);
  d.report("a", r404);
  times(d, "a", r500, 2);
  assert.equal(d.isEjected("a"), false);
  d.report("a", RESET);
  assert.equal(d.isEjected("a"), true, "resets count as gateway failures");
  assert.deepEqual(events, [{
    kind: "ejected",
    key: "a",
    reason: "consecutive_5xx",
    durationMs: 30_000,
    timesEjected: 1,
  }]);
});

Deno.test("consecutive connect failures eject with their own reason", () => {
  const { d, events } = setup({ consecutive5xx: 10, consecutiveConnectFailures: 2 });
  d.report("b", CONNECT_FAILURE);
  d.report("b", CONNECT_FAILURE);
  assert.equal(d.isEjected("b"), true);
  assert.equal(events[0]?.kind === "ejected" && events[0].reason, "consecutive_connect_failure");
  // A timeout breaks the run of connect failures.
  d.report("c", CONNECT_FAILURE);
  d.report("c", TIMEOUT);
  d.report("c", CONNECT_FAILURE);
  assert.equal(d.isEjected("c"), false);
});

Deno.test("ejections grow with repeats, are capped, and end at the first tick after expiry", () => {
  const { d, events, clock } = setup({
    consecutive5xx: 1,
    baseEjectionMs: 30_000,
    maxEjectionMs: 70_000,
    maxEjectionPercent: 50,
    intervalMs: 10_000,
  });
  const durations: number[] = [];
  for (let round = 0; round < 3; round++) {
    d.report("a", r500);
    const ev = events.at(-1)!;
    assert.equal(ev.kind, "ejected");
    if (ev.kind === "ejected") durations.push(ev.durationMs);
    // Tick until restored, counting the ticks.
    let ticks = 0;
    while (d.isEjected("a")) {
      clock.advance(10_000);
      d.tick();
      ticks++;
    }
    assert.equal(events.at(-1)?.kind, "restored");
    assert.equal(ticks * 10_000, durations.at(-1));
  }
  assert.deepEqual(durations, [30_000, 60_000, 70_000]);
});

Deno.test("ticks while healthy bring the multiplier back down", () => {
  const { d, events, clock } = setup({ consecutive5xx: 1, maxEjectionPercent: 50 });
  d.report("a", r500);
  clock.advance(30_000);
  d.tick(); // restored
  for (let i = 0; i < 5; i++) d.tick(); // healthy intervals
  d.report("a", r500);
  const ev = events.at(-1)!;
  assert.ok(ev.kind === "ejected" && ev.timesEjected === 1 && ev.durationMs === 30_000);
});

Deno.test("never more than max_ejection_percent are ejected at once", () => {
  const keys = Array.from({ length: 10 }, (_, i) => `e${i}`);
  const { d, events } = setup({ consecutive5xx: 1, maxEjectionPercent: 30 }, keys);
  for (const k of keys) d.report(k, r500);
  assert.equal(d.ejectedCount(), 3);
  assert.equal(events.filter((e) => e.kind === "overflow").length, 7);
  assert.equal(keys.filter((k) => d.isEjected(k)).length, 3);
});

Deno.test("at least one may be ejected, but never the last endpoint; 0% disables", () => {
  const two = setup({ consecutive5xx: 1, maxEjectionPercent: 10 }, ["a", "b"]);
  two.d.report("a", r500);
  two.d.report("b", r500);
  assert.equal(two.d.ejectedCount(), 1);
  const one = setup({ consecutive5xx: 1, maxEjectionPercent: 100 }, ["a"]);
  one.d.report("a", r500);
  assert.equal(one.d.isEjected("a"), false);
  const off = setup({ consecutive5xx: 1, maxEjectionPercent: 0 });
  off.d.report("a", r500);
  assert.equal(off.d.ejectedCount(), 0);
});

Deno.test("setEndpoints keeps state of staying keys and forgets removed ones", () => {
  const { d } = setup({ consecutive5xx: 2, maxEjectionPercent: 50 });
  d.report("a", r500);
  d.report("a", r500);
  d.report("b", r500);
  d.setEndpoints(["a", "b", "e"]);
  assert.equal(d.isEjected("a"), true);
  assert.equal(d.ejectedCount(), 1);
  d.report("b", r500);
  assert.equal(d.isEjected("b"), false, "three endpoints allow only one ejection at 50%");
  d.setEndpoints(["b", "e"]);
  assert.equal(d.ejectedCount(), 0);
  d.report("zz", r500); // unknown keys are ignored
  d.report("b", r200);
});

Deno.test("an endpoint ejected for failed connects or broken connections may come back early; one ejected for 5xx or timeouts may not", () => {
  const { d, events } = setup({ consecutive5xx: 3, maxEjectionPercent: 80 }, [
    "a",
    "b",
    "c",
    "d",
    "e",
  ]);
  times(d, "a", CONNECT_FAILURE, 2);
  d.report("a", RESET);
  times(d, "b", r500, 2);
  d.report("b", CONNECT_FAILURE);
  // A frozen app whose kernel still accepts connections times out: a probe's connect proves
  // nothing about it.
  times(d, "c", CONNECT_FAILURE, 2);
  d.report("c", TIMEOUT);
  times(d, "d", RESET, 3);
  assert.equal(d.isEjected("a"), true);
  assert.equal(d.isEjected("b"), true);
  assert.equal(d.isEjected("c"), true);
  assert.equal(d.isEjected("d"), true);
  assert.deepEqual(d.ejectedUnreachable(), ["a", "d"]);
  assert.equal(d.restoreReachable("b"), false, "a 5xx answer proves the endpoint reachable");
  assert.equal(d.restoreReachable("c"), false, "a timeout happens on an open connection");
  assert.equal(d.restoreReachable("a"), true);
  assert.equal(d.isEjected("a"), false);
  assert.equal(d.ejectedCount(), 3);
  assert.deepEqual(events.at(-1), { kind: "restored", key: "a" });
  assert.equal(d.restoreReachable("a"), false, "only once");
});
