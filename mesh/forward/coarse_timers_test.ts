import { assertEquals } from "../../tests/assert.ts";
import { CoarseTimers } from "./coarse_timers.ts";

Deno.test("coarse timers fire once when due, in any order, and not after cancel", () => {
  let now = 1000;
  const t = new CoarseTimers(5, () => now);
  const fired: string[] = [];
  const a = t.start(50, () => fired.push("a"));
  t.start(20, () => fired.push("b"));
  const c = t.start(30, () => fired.push("c"));
  t.cancel(c);
  t.cancel(undefined);
  now = 1019;
  t.check();
  assertEquals(fired, []);
  now = 1020;
  t.check();
  assertEquals(fired, ["b"]);
  now = 1100;
  t.check();
  t.check();
  assertEquals(fired, ["b", "a"]);
  assertEquals(t.size, 0);
  t.cancel(a); // already fired: harmless
  t.close();
});

Deno.test("a failing timer callback does not stop the others; `from` sets the start", () => {
  let now = 0;
  const t = new CoarseTimers(5, () => now);
  const fired: number[] = [];
  t.start(10, () => {
    throw new Error("boom");
  });
  t.start(10, () => fired.push(1), -5);
  now = 5;
  t.check();
  assertEquals(fired, [1]);
  assertEquals(t.size, 1);
  now = 10;
  t.check();
  assertEquals(t.size, 0);
  t.close();
});

Deno.test("the interval fires real timers and disarms when idle", async () => {
  const t = new CoarseTimers(2);
  // The interval is unref'd (an idle proxy may exit), so something else keeps the test alive.
  const keepAlive = setTimeout(() => {}, 10_000);
  const done = new Promise<string>((r) => t.start(5, () => r("fired")));
  assertEquals(await done, "fired");
  clearTimeout(keepAlive);
  assertEquals(t.size, 0);
  t.close();
});
