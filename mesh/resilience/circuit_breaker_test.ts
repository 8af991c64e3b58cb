import assert from "node:assert/strict";
import { CircuitBreaker, CircuitOpenError, type CircuitResource } from "./circuit_breaker.ts";

Deno.test("tryAcquire admits up to each limit and counts rejections", () => {
  const cb = new CircuitBreaker("ledger", { maxConnections: 2, maxPending: 1, maxRequests: 3 });
  const table: [CircuitResource, number][] = [["connections", 2], ["pending", 1], ["requests", 3]];
  for (const [r, limit] of table) {
    for (let i = 0; i < limit; i++) assert.equal(cb.tryAcquire(r), true, `${r} #${i}`);
    assert.equal(cb.tryAcquire(r), false, `${r} over limit`);
    assert.equal(cb.tryAcquire(r), false);
    assert.equal(cb.rejections[r], 2);
    assert.equal(cb[r], limit);
  }
});

Deno.test("release makes room again and refuses to go below zero", () => {
  const cb = new CircuitBreaker("ledger", { maxRequests: 1 });
  assert.equal(cb.tryAcquire("requests"), true);
  assert.equal(cb.tryAcquire("requests"), false);
  cb.release("requests");
  assert.equal(cb.tryAcquire("requests"), true);
  cb.release("requests");
  assert.throws(() => cb.release("requests"), /below 0/);
});

Deno.test("acquire throws CircuitOpenError naming the resource and limit", () => {
  const cb = new CircuitBreaker("ledger", { maxPending: 0 });
  assert.throws(() => cb.acquire("pending"), (e: unknown) => {
    assert.ok(e instanceof CircuitOpenError);
    assert.equal(e.resource, "pending");
    assert.equal(e.limit, 0);
    assert.equal(e.status, 503);
    assert.match(e.message, /ledger: pending at limit 0/);
    return true;
  });
});

Deno.test("setLimits keeps the counts", () => {
  const cb = new CircuitBreaker("ledger", { maxConnections: 5 });
  for (let i = 0; i < 4; i++) cb.acquire("connections");
  cb.setLimits({ maxConnections: 3 });
  assert.equal(cb.connections, 4);
  assert.equal(cb.tryAcquire("connections"), false);
  assert.equal(cb.limit("connections"), 3);
  assert.equal(cb.limit("requests"), 1024, "defaults apply to limits left out");
});
