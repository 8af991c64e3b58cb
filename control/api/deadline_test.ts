import assert from "node:assert/strict";
import { DeadlineExceeded, SharedDeadlines } from "./deadline.ts";

Deno.test("SharedDeadlines: operations that settle in time keep their outcome and leave no timer", async () => {
  const d = new SharedDeadlines(60_000);
  assert.equal(await d.lease().bound(Promise.resolve(7)), 7);
  await assert.rejects(d.lease().bound(Promise.reject(new RangeError("no"))), RangeError);
  // An idle bucket is dropped with its timer: within the same window, the next lease gets a
  // new bucket, and the old signal never aborts.
  const wide = new SharedDeadlines(60_000, 60_000);
  const first = wide.lease();
  await first.bound(Promise.resolve());
  const second = wide.lease();
  assert.notEqual(second.signal, first.signal);
  await second.bound(Promise.resolve());
  assert.equal(first.signal.aborted, false);
});

Deno.test("SharedDeadlines: an operation that never settles is refused and its signal aborts", async () => {
  const d = new SharedDeadlines(10, 5);
  const lease = d.lease();
  const never = new Promise<number>(() => {});
  const err = await lease.bound(never).catch((e) => e);
  assert.ok(err instanceof DeadlineExceeded, String(err));
  assert.equal(err.timeoutMs, 10);
  assert.ok(lease.signal.aborted);
});

Deno.test("SharedDeadlines: leases of one bucket share a signal; later ones get a fresh one", async () => {
  // Buckets of 200 ms: two back-to-back leases share one even on a stalled machine, and a
  // sleep only ever errs long, so the later lease is always in a new bucket.
  const d = new SharedDeadlines(60_000, 200);
  const hold = Promise.withResolvers<void>();
  const a = d.lease();
  const b = d.lease();
  const pa = a.bound(hold.promise);
  const pb = b.bound(hold.promise);
  assert.equal(a.signal, b.signal);
  await new Promise((r) => setTimeout(r, 250));
  const c = d.lease();
  assert.notEqual(c.signal, a.signal);
  const pc = c.bound(Promise.resolve());
  hold.resolve();
  await Promise.all([pa, pb, pc]);
  // Once idle, a bucket is gone: the next lease starts a new one, even inside the window.
  const e = d.lease();
  assert.notEqual(e.signal, c.signal);
  await e.bound(Promise.resolve());
});
