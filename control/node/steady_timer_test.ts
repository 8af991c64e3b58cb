import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { nextDue, steadyEvery, type TimerPort } from "./steady_timer.ts";

Deno.test("nextDue keeps the phase: a late tick does not delay the next one", () => {
  assertEquals(nextDue(100, 100, 130), 200);
  assertEquals(nextDue(100, 100, 100), 200);
  // Ran early (timer rounding): still one period after the due time, never a second tick now.
  assertEquals(nextDue(100, 100, 99.5), 200);
});

Deno.test("nextDue skips ticks missed by a stall instead of bunching them", () => {
  assertEquals(nextDue(100, 100, 200), 200);
  assertEquals(nextDue(100, 100, 201), 300);
  assertEquals(nextDue(100, 100, 475), 500);
});

/** A fake clock whose timers fire `lateBy` ms after they are due. */
function fakeTimers(lateBy: number): TimerPort & { run(until: number): void } {
  let now = 0;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      timers.set(++seq, { at: now + ms + lateBy, fn });
      return seq;
    },
    clearTimeout(id) {
      timers.delete(id as number);
    },
    run(until) {
      for (;;) {
        const next = [...timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > until) return;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
    },
  };
}

Deno.test("steadyEvery with every timer 15 ms late still ticks ten times in about a second", () => {
  const t = fakeTimers(15);
  const at: number[] = [];
  const stop = steadyEvery(100, () => at.push(t.now()), t);
  t.run(1020);
  stop();
  // setInterval re-arming from each late callback would reach only 1150 by the tenth tick.
  assertEquals(at, [115, 215, 315, 415, 515, 615, 715, 815, 915, 1015]);
  t.run(5000);
  assertEquals(at.length, 10, "no tick after stop");
});

Deno.test("steadyEvery refuses a period that is not positive", () => {
  assertThrows(() => steadyEvery(0, () => {}), RangeError);
});
