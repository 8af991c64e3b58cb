import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { RequestLimit, sharedLimitBytes, SharedLimits } from "./shared_limits.ts";

Deno.test("SharedLimits: two views of one buffer agree on slots and counts", () => {
  const a = new SharedLimits();
  const b = new SharedLimits(a.buffer); // what a worker sees after the buffer is posted to it
  const la = new RequestLimit(a, "outbound:ledger", 2);
  const lb = new RequestLimit(b, "outbound:ledger", 2);
  const other = new RequestLimit(b, "outbound:payments", 2);
  assert(la.tryAcquire());
  assert(lb.tryAcquire());
  assertEquals([la.tryAcquire(), lb.tryAcquire()], [false, false]);
  assertEquals([la.active, lb.active, other.active], [2, 2, 0]);
  assert(other.tryAcquire());
  lb.release();
  assert(la.tryAcquire());
  la.setLimit(5);
  assert(la.tryAcquire());
  assertEquals(lb.active, 3);
});

Deno.test("SharedLimits: many names get distinct slots and a release below zero throws", () => {
  const t = new SharedLimits();
  const slots = new Set<number>();
  for (let i = 0; i < 4096; i++) slots.add(t.slot(`outbound:svc-${i}`));
  assertEquals(slots.size, 4096);
  assertEquals(t.slot("outbound:svc-7"), t.slot("outbound:svc-7"));
  assertThrows(() => t.release(t.slot("x")), Error);
  assertThrows(() => new SharedLimits(new SharedArrayBuffer(8)), RangeError);
});

Deno.test("SharedLimits: a crashed worker's in-flight requests are given back when its column is reset", () => {
  const buffer = new SharedArrayBuffer(sharedLimitBytes(2));
  const main = new SharedLimits(buffer);
  const w0 = new SharedLimits(buffer, 0);
  const w1 = new SharedLimits(buffer, 1);
  const l0 = new RequestLimit(w0, "outbound:ledger", 2);
  const l1 = new RequestLimit(w1, "outbound:ledger", 2);
  assert(l0.tryAcquire());
  assert(l0.tryAcquire());
  assertEquals(l1.tryAcquire(), false, "worker 0 holds the whole limit");
  // Worker 0 crashes holding both; the main thread resets its column before replacing it.
  main.releaseWorker(0);
  assertEquals(l1.active, 0);
  assert(l1.tryAcquire());
  // The replacement starts from zero in the same column, and its releases stay balanced.
  const again = new RequestLimit(new SharedLimits(buffer, 0), "outbound:ledger", 2);
  assert(again.tryAcquire());
  again.release();
  l1.release();
  assertEquals(l1.active, 0);
  main.releaseWorker(1);
  assertEquals(l1.active, 0, "a reset of a column holding nothing changes nothing");
  assertThrows(() => new SharedLimits(buffer, 2), RangeError);
});
