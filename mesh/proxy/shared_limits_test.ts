import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { RequestLimit, SharedLimits } from "./shared_limits.ts";

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
