import assert from "node:assert/strict";
import { manualClock } from "../../tests/manual_clock.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { CONNECT_FAILURE, type Outcome, RESET, TIMEOUT } from "./outcome.ts";
import { RetryBudget, type RetryOn, RetryPolicy } from "./retry.ts";

const res = (status: number): Outcome => ({ kind: "response", status });

function policy(on: RetryOn[], extra: Partial<ConstructorParameters<typeof RetryPolicy>[0]> = {}) {
  const clock = manualClock();
  return new RetryPolicy({ attempts: 3, on, ...extra }, {
    now: clock.now,
    random: seededRandom(1),
  });
}

Deno.test("retryableOutcome follows the `on` list", () => {
  const table: [RetryOn[], Outcome, boolean][] = [
    [["5xx"], res(500), true],
    [["5xx"], res(503), true],
    [["5xx"], TIMEOUT, true],
    [["5xx"], res(404), false],
    [["5xx"], RESET, false],
    [["5xx"], CONNECT_FAILURE, false],
    [["gateway_error"], res(502), true],
    [["gateway_error"], res(504), true],
    [["gateway_error"], res(500), false],
    [["gateway_error"], TIMEOUT, true],
    [["reset"], RESET, true],
    [["reset"], res(502), false],
    [["connect_failure"], CONNECT_FAILURE, true],
    [["connect_failure"], TIMEOUT, false],
    [["retriable_4xx"], res(409), true],
    [["retriable_4xx"], res(429), false],
    [["retriable_4xx"], res(500), false],
    [[], res(503), false],
    [["5xx"], res(200), false],
  ];
  for (const [on, outcome, want] of table) {
    assert.equal(policy(on).retryableOutcome(outcome), want, `${on} ${JSON.stringify(outcome)}`);
  }
});

Deno.test("only idempotent methods are retried unless retryNonIdempotent", () => {
  const p = policy(["5xx"]);
  for (const m of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]) {
    assert.equal(p.retryableMethod(m), true, m);
  }
  for (const m of ["POST", "PATCH", "CONNECT"]) assert.equal(p.retryableMethod(m), false, m);
  assert.deepEqual(p.decide("POST", res(503), 1), { retry: false, reason: "non_idempotent" });
  const q = policy(["5xx"], { retryNonIdempotent: true });
  assert.equal(q.decide("POST", res(503), 1).retry, true);
});

Deno.test("a failed connect is retried whatever the method, a reset of a POST is not", () => {
  const p = policy(["reset", "connect_failure"]);
  assert.equal(p.decide("POST", { kind: "connect_failure" }, 1).retry, true);
  assert.equal(p.decide("PATCH", { kind: "connect_failure" }, 1).retry, true);
  assert.deepEqual(p.decide("POST", { kind: "reset" }, 1), {
    retry: false,
    reason: "non_idempotent",
  });
  // Still only when the policy retries connect failures at all.
  assert.deepEqual(policy(["5xx"]).decide("POST", { kind: "connect_failure" }, 1), {
    retry: false,
    reason: "not_retryable",
  });
});

Deno.test("decide stops after `attempts` tries in total", () => {
  const p = policy(["5xx"]);
  assert.equal(p.decide("GET", res(500), 1).retry, true);
  assert.equal(p.decide("GET", res(500), 2).retry, true);
  assert.deepEqual(p.decide("GET", res(500), 3), { retry: false, reason: "attempts_exhausted" });
  assert.deepEqual(p.decide("GET", res(200), 1), { retry: false, reason: "not_retryable" });
});

Deno.test("decide does not retry when the backoff would outlive the overall deadline", () => {
  const p = policy(["5xx"], { backoffBaseMs: 100 });
  assert.deepEqual(p.decide("GET", res(500), 1, 0), { retry: false, reason: "deadline" });
});

Deno.test("backoff uses full jitter under an exponential ceiling capped at max", () => {
  const p = policy(["5xx"], { backoffBaseMs: 25, backoffMaxMs: 1000 });
  const maxSeen = [0, 0, 0, 0, 0, 0, 0, 0];
  let minSeen = Infinity;
  for (let i = 0; i < 2000; i++) {
    for (let r = 1; r <= 7; r++) {
      const d = p.backoffMs(r);
      const ceiling = Math.min(1000, 25 * 2 ** (r - 1));
      assert.ok(d >= 0 && d < ceiling, `retry ${r}: ${d} outside [0, ${ceiling})`);
      maxSeen[r] = Math.max(maxSeen[r]!, d);
      minSeen = Math.min(minSeen, d);
    }
  }
  assert.ok(maxSeen[1]! > 20, "jitter reaches close to the ceiling");
  assert.ok(maxSeen[7]! > 900 && maxSeen[7]! < 1000, "capped at max");
  assert.ok(minSeen < 1, "full jitter reaches close to zero");
});

Deno.test("with 100% failures, retries stay within the budget", () => {
  const clock = manualClock();
  const p = new RetryPolicy(
    { attempts: 5, on: ["5xx"], budgetPercent: 20, minRetriesPerSecond: 1, budgetWindowMs: 10_000 },
    { now: clock.now, random: seededRandom(2) },
  );
  // Per second (one budget bucket): original requests and retries.
  const reqs: number[] = [];
  const retries: number[] = [];
  // 100 requests per second for 60 s, every try failing.
  for (let ms = 0; ms < 60_000; ms += 10) {
    const sec = Math.floor(ms / 1000);
    p.recordRequest();
    reqs[sec] = (reqs[sec] ?? 0) + 1;
    let n = 1;
    while (p.decide("GET", res(503), n).retry) {
      n++;
      retries[sec] = (retries[sec] ?? 0) + 1;
    }
    clock.advance(10);
  }
  // In every 10 s window: retries <= 20% of requests + 1/s * 10 s.
  for (let end = 10; end <= 60; end++) {
    let r = 0;
    let q = 0;
    for (let s = end - 10; s < end; s++) {
      r += retries[s] ?? 0;
      q += reqs[s] ?? 0;
    }
    assert.ok(r <= 0.2 * q + 10, `window ending at ${end}s: ${r} retries for ${q} requests`);
  }
  const total = retries.reduce((a, b) => a + (b ?? 0), 0);
  const extra = total / 6000;
  assert.ok(extra <= 0.21, `retries added ${extra * 100}% load`);
  assert.ok(extra > 0.15, `the budget is used, not starved: ${extra}`);
});

Deno.test("the budget's reserve lets a quiet service retry, and the window slides", () => {
  const clock = manualClock();
  const b = new RetryBudget({ now: clock.now, percent: 0, minPerSecond: 1, windowMs: 10_000 });
  let granted = 0;
  while (b.tryWithdraw()) granted++;
  assert.equal(granted, 10);
  assert.equal(b.available(), 0);
  clock.advance(5_000);
  assert.equal(b.tryWithdraw(), false, "the spent retries are still in the window");
  clock.advance(6_000);
  assert.equal(b.available(), 10, "they slid out of it");
});

Deno.test("the budget grows with requests", () => {
  const clock = manualClock();
  const b = new RetryBudget({ now: clock.now, percent: 50, minPerSecond: 0, windowMs: 1000 });
  assert.equal(b.tryWithdraw(), false);
  for (let i = 0; i < 10; i++) b.recordRequest();
  assert.equal(b.available(), 5);
  clock.advance(-500);
  assert.equal(b.available(), 5, "a clock stepping back does not corrupt the window");
});

Deno.test("decideConnect retries only a failed connect, within attempts and budget", () => {
  // The `on` list does not apply to opaque TCP connections: nothing else is safe to retry.
  const p = policy(["5xx"], { budgetPercent: 0, minRetriesPerSecond: 0.1, budgetWindowMs: 10_000 });
  assert.deepEqual(p.decideConnect(RESET, 1), { retry: false, reason: "not_retryable" });
  assert.deepEqual(p.decideConnect(TIMEOUT, 1), { retry: false, reason: "not_retryable" });
  assert.deepEqual(p.decideConnect(CONNECT_FAILURE, 3), {
    retry: false,
    reason: "attempts_exhausted",
  });
  assert.equal(p.decideConnect(CONNECT_FAILURE, 1).retry, true);
  // The reserve held one retry, and it is spent.
  assert.deepEqual(p.decideConnect(CONNECT_FAILURE, 1), {
    retry: false,
    reason: "budget_exhausted",
  });
});
