import { assertEquals } from "../../tests/assert.ts";
import {
  type CoarseTimer,
  CoarseTimers,
  MAX_TIMER_STEP_MS,
  MIN_TIMER_STEP_MS,
  timerStep,
} from "./coarse_timers.ts";

/** A timer that records its name when it fires (and optionally throws or re-arms). */
function timer(fired: string[], name: string, then?: (t: CoarseTimer) => void): CoarseTimer {
  const t: CoarseTimer = {
    due: Infinity,
    queued: false,
    step: 0,
    fire() {
      fired.push(name);
      then?.(t);
    },
  };
  return t;
}

Deno.test("coarse timers fire once when due, in any order, and not after disarm", () => {
  let now = 1000;
  const ts = new CoarseTimers(() => now);
  const fired: string[] = [];
  const a = timer(fired, "a");
  const b = timer(fired, "b");
  const c = timer(fired, "c");
  ts.arm(a, 50);
  ts.arm(b, 20);
  ts.arm(c, 30);
  ts.disarm(c);
  ts.disarm(timer(fired, "never armed"));
  assertEquals(ts.size, 2);
  now = 1019;
  ts.check();
  assertEquals(fired, []);
  now = 1020;
  ts.check();
  assertEquals(fired, ["b"]);
  now = 1100;
  ts.check();
  ts.check();
  assertEquals(fired, ["b", "a"]);
  assertEquals(ts.size, 0);
  assertEquals([a.queued, b.queued, c.queued], [false, false, false]);
  ts.disarm(a); // already fired: harmless
  ts.close();
});

Deno.test("a re-armed timer keeps its place and only its last deadline counts", () => {
  let now = 0;
  const ts = new CoarseTimers(() => now);
  const fired: string[] = [];
  const a = timer(fired, "a");
  ts.arm(a, 10);
  ts.disarm(a);
  ts.arm(a, 30); // re-armed before any check: still one entry, the new deadline
  now = 10;
  ts.check();
  assertEquals(fired, []);
  assertEquals(a.queued, true);
  ts.disarm(a);
  now = 50;
  ts.check(); // disarmed: dropped from the set without firing
  assertEquals(fired, []);
  assertEquals(a.queued, false);
  ts.arm(a, 5);
  now = 55;
  ts.check();
  assertEquals(fired, ["a"]);
  ts.close();
});

Deno.test("a failing timer does not stop the others; `from` sets the start; fire may re-arm", () => {
  let now = 0;
  const ts = new CoarseTimers(() => now);
  const fired: string[] = [];
  ts.arm(
    timer(fired, "boom", () => {
      throw new Error("boom");
    }),
    10,
  );
  ts.arm(timer(fired, "early"), 10, -5);
  let again = true;
  const r = timer(fired, "r", (t) => {
    if (again) ts.arm(t, 10);
    again = false;
  });
  ts.arm(r, 5);
  now = 5;
  ts.check();
  assertEquals(fired, ["early", "r"]);
  assertEquals(ts.size, 2);
  now = 15;
  ts.check();
  assertEquals(fired, ["early", "r", "boom", "r"]);
  assertEquals(ts.size, 0);
  ts.close();
});

Deno.test("the interval fires real timers and stops when nothing is queued", async () => {
  const ts = new CoarseTimers();
  // The interval is unref'd (an idle proxy may exit), so something else keeps the test alive.
  const keepAlive = setTimeout(() => {}, 10_000);
  const fired: string[] = [];
  const done = new Promise<void>((resolve) => ts.arm(timer(fired, "a", () => resolve()), 5));
  await done;
  assertEquals(fired, ["a"]);
  // One more check drops nothing else and stops the interval (the test would leak it otherwise).
  ts.check();
  clearTimeout(keepAlive);
  assertEquals(ts.size, 0);
  ts.close();
});

Deno.test("the check period is a tenth of the shortest armed budget, within 5 and 50 ms", () => {
  assertEquals(
    [timerStep(10), timerStep(100), timerStep(300), timerStep(15_000)],
    [MIN_TIMER_STEP_MS, 10, 30, MAX_TIMER_STEP_MS],
  );
  let now = 0;
  const ts = new CoarseTimers(() => now);
  const fired: string[] = [];
  const slow = timer(fired, "slow");
  const fast = timer(fired, "fast");
  assertEquals(ts.period, Infinity);
  ts.arm(slow, 15_000);
  assertEquals(ts.period, 50);
  ts.arm(fast, 100); // a finer budget makes the interval finer at once
  assertEquals(ts.period, 10);
  ts.disarm(fast);
  now = 20;
  ts.check(); // only the 15 s timer is left: back to the coarse period
  assertEquals(ts.period, 50);
  now = 15_000;
  ts.check();
  assertEquals([fired, ts.period], [["slow"], Infinity]); // nothing queued: stopped
  ts.close();
});
