import { assert, assertEquals } from "../../tests/assert.ts";
import { turnNow } from "./batch_clock.ts";

Deno.test("turnNow() reads the clock once per run of queued microtasks", async () => {
  const a = turnNow();
  // Busy for a while in the same synchronous run: still the same reading.
  const until = performance.now() + 3;
  while (performance.now() < until) { /* spin */ }
  assertEquals(turnNow(), a);
  // Continuations queued in the same batch share it too.
  const seen = await Promise.all([1, 2, 3].map(async () => {
    await null;
    return turnNow();
  }));
  assert(seen.every((t) => t >= a), "never earlier than the first reading");
  // After the queue has drained (a timer turn later), time has moved on.
  await new Promise((r) => setTimeout(r, 5));
  const lo = performance.now();
  const b = turnNow();
  const hi = performance.now();
  assert(b >= a + 3, `a fresh reading after the batch (${a} -> ${b})`);
  assert(lo <= b && b <= hi, `and it is the current time (${lo} <= ${b} <= ${hi})`);
});
