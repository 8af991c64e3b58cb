import assert from "node:assert/strict";
import { type CommittedHealth, LeaseTracker } from "./leases.ts";

const inst = (id: string, health: CommittedHealth["health"] = "passing"): CommittedHealth => ({
  service: "api",
  id,
  health,
});

Deno.test("LeaseTracker expires an instance after the TTL and revives it on a heartbeat", () => {
  const t = new LeaseTracker({ ttlMs: 1000, graceMs: 500, retryMs: 100 });
  t.becameLeader(0);
  t.heartbeat("api", "a", undefined, 0);
  assert.deepEqual(t.expired(600, [inst("a")]), []);
  assert.deepEqual(t.expired(1000, [inst("a")]), []);
  assert.deepEqual(t.expired(1001, [inst("a")]), [{ service: "api", id: "a", health: "critical" }]);
  // Still uncommitted: not re-reported until the retry delay passed.
  assert.deepEqual(t.expired(1050, [inst("a")]), []);
  assert.deepEqual(t.expired(1101, [inst("a")]).length, 1);
  // Committed now: nothing to do.
  assert.deepEqual(t.expired(1200, [inst("a", "critical")]), []);
  t.heartbeat("api", "a", undefined, 1300);
  assert.deepEqual(t.expired(1300, [inst("a", "critical")]), [{
    service: "api",
    id: "a",
    health: "passing",
  }]);
});

Deno.test("LeaseTracker grants a grace period after becoming leader", () => {
  const t = new LeaseTracker({ ttlMs: 100, graceMs: 1000 });
  t.heartbeat("api", "a", undefined, 0);
  t.becameLeader(5000);
  assert.deepEqual(t.expired(5500, [inst("a"), inst("b")]), []);
  assert.deepEqual(t.expired(5999, [inst("a"), inst("b")]), []);
  // After grace, leases restarted at becameLeader and first sight (5500) are long past TTL.
  assert.deepEqual(t.expired(6001, [inst("b"), inst("a")]).map((c) => c.id), ["a", "b"]);
});

Deno.test("LeaseTracker commits the health a proxy reports and only changes", () => {
  const t = new LeaseTracker({ ttlMs: 1000, graceMs: 0 });
  t.becameLeader(0);
  t.heartbeat("api", "a", "warning", 10);
  t.heartbeat("api", "b", "passing", 10);
  assert.deepEqual(t.expired(20, [inst("a"), inst("b")]), [{
    service: "api",
    id: "a",
    health: "warning",
  }]);
});

Deno.test("LeaseTracker drops leases of deregistered instances and honours its bound", () => {
  const t = new LeaseTracker({ ttlMs: 1000, maxLeases: 2 });
  assert.ok(t.heartbeat("api", "a", undefined, 0));
  assert.ok(t.heartbeat("api", "b", undefined, 0));
  assert.equal(t.heartbeat("api", "c", undefined, 0), false);
  t.expired(1, [inst("a")]);
  assert.equal(t.size, 1);
  assert.ok(t.heartbeat("api", "c", undefined, 2));
  t.forget("api", "c");
  t.clear();
  assert.equal(t.size, 0);
});

Deno.test("LeaseTracker takes the committed instances as any iterable, walked once", () => {
  const t = new LeaseTracker({ ttlMs: 1000, graceMs: 0, retryMs: 100 });
  t.becameLeader(0);
  function* committed(ids: string[]): Generator<CommittedHealth> {
    for (const id of ids) yield inst(id);
  }
  t.heartbeat("api", "a", undefined, 0);
  t.heartbeat("api", "b", "warning", 0);
  assert.deepEqual(t.expired(10, committed(["a", "b"])), [
    { service: "api", id: "b", health: "warning" },
  ]);
  assert.equal(t.size, 2);
  // "b" is gone from the catalog: its lease goes; a heartbeat for a stranger lasts one sweep.
  t.heartbeat("api", "z", undefined, 20);
  assert.deepEqual(t.expired(1500, committed(["a"])), [
    { service: "api", id: "a", health: "critical" },
  ]);
  assert.equal(t.size, 1);
});
