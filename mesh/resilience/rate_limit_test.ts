import assert from "node:assert/strict";
import { manualClock } from "../../tests/manual_clock.ts";
import { RateLimitedError, TokenBucket } from "./rate_limit.ts";

Deno.test("the bucket starts full and allows a burst, then refuses", () => {
  const clock = manualClock();
  const b = new TokenBucket({ requestsPerSecond: 10, burst: 5, now: clock.now });
  for (let i = 0; i < 5; i++) assert.equal(b.tryTake(), true);
  assert.equal(b.tryTake(), false);
  assert.equal(b.waitMs(), 100);
});

Deno.test("the bucket refills at the rate, up to the burst", () => {
  const clock = manualClock();
  const b = new TokenBucket({ requestsPerSecond: 500, burst: 1000, now: clock.now });
  while (b.tryTake());
  let admitted = 0;
  // Over 10 simulated seconds in 1 ms steps, a greedy client gets rate * time.
  for (let ms = 0; ms < 10_000; ms++) {
    clock.advance(1);
    while (b.tryTake()) admitted++;
  }
  assert.ok(Math.abs(admitted - 5000) <= 1, `admitted ${admitted}`);
  clock.advance(60_000);
  assert.equal(b.available(), 1000, "capped at burst");
});

Deno.test("burst defaults to the rate and bad rates are refused", () => {
  const b = new TokenBucket({ requestsPerSecond: 3, now: manualClock().now });
  assert.equal(b.burst, 3);
  assert.throws(() => new TokenBucket({ requestsPerSecond: 0, now: () => 0 }), RangeError);
});

Deno.test("a clock stepping back adds no tokens", () => {
  const clock = manualClock(1000);
  const b = new TokenBucket({ requestsPerSecond: 1, burst: 1, now: clock.now });
  assert.equal(b.tryTake(), true);
  clock.advance(-500);
  assert.equal(b.tryTake(), false);
  clock.advance(1500);
  assert.equal(b.tryTake(), true);
});

Deno.test("RateLimitedError answers 429 and says the limit", () => {
  const e = new RateLimitedError("ledger", 500, 2);
  assert.equal(e.status, 429);
  assert.match(e.message, /ledger allows 500 requests per second/);
});
