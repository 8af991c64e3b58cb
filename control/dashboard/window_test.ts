import { assert, assertEquals } from "../../tests/assert.ts";
import { STATS_BUCKETS } from "../../common/heartbeat_stats.ts";
import { BUCKET_MS, BUCKETS, DashboardWindow, quantileMs } from "./window.ts";
import { HeartbeatStatsSchema } from "./stats_schema.ts";

const hist = (i: number, n: number) => {
  const b = new Array(STATS_BUCKETS.length + 1).fill(0);
  b[i] = n;
  return b;
};

function report(requests: number, errors: number, at: number) {
  return {
    node: "vm-billing",
    edges: [{
      source: "billing",
      destination: "ledger",
      side: "out" as const,
      requests,
      errors,
      buckets: hist(3, requests), // 5-10 ms
      inflight: 2,
      rejections: 0,
    }],
    denials: [{
      at,
      caller: "spiffe://td/svc/x",
      service: "ledger",
      method: "GET",
      path: "/a",
      reason: "default_deny",
    }],
    certs: [{ service: "billing", not_after: at + 1000 }],
  };
}

Deno.test("DashboardWindow counts what moved since a proxy's first report", () => {
  const w = new DashboardWindow();
  const t0 = 1_000 * BUCKET_MS;
  w.record(report(100, 0, t0), t0); // baseline: the proxy had served 100 before
  w.record(report(130, 3, t0 + 1), t0 + 1);
  w.record(report(150, 3, t0 + BUCKET_MS), t0 + BUCKET_MS);
  const now = t0 + BUCKET_MS;
  const s = w.signals(now).ledger!;
  assertEquals(s.t.length, BUCKETS);
  assertEquals(s.rate.slice(-2), [3, 2]); // 30 then 20 requests per 10 s bucket
  assertEquals(s.success.at(-2), 0.9);
  assertEquals(s.success.at(-1), 1);
  assertEquals(s.success[0], null);
  assert(s.p99.at(-1)! > 5 && s.p99.at(-1)! <= 10, String(s.p99.at(-1)));
  assertEquals(s.inflight.at(-1), 2);
  const [e] = w.edges(now);
  assertEquals(e!.requests, 50);
  assertEquals(e!.rate, 50 / 20); // over the two buckets covered
  assertEquals(e!.success, 1 - 3 / 50);
  assertEquals(w.denials().length, 3);
  assertEquals(w.certs(), [{ node: "vm-billing", service: "billing", not_after: now + 1000 }]);
  // A restarted proxy's counters start over from zero instead of going negative.
  w.record(report(5, 0, now + 2), now + 2);
  assertEquals(w.signals(now + 2).ledger!.rate.at(-1), 2.5);
  // After 15 minutes the old buckets are gone.
  const later = now + BUCKETS * BUCKET_MS;
  assertEquals(w.edges(later), []);
  assertEquals(w.signals(later).ledger!.rate.every((r) => r === 0), true);
});

Deno.test("quantileMs interpolates inside the bucket that crosses the quantile", () => {
  assertEquals(quantileMs(hist(0, 10), 0.5), 0.5);
  assertEquals(quantileMs(new Array(STATS_BUCKETS.length + 1).fill(0), 0.5), null);
});

Deno.test("HeartbeatStatsSchema refuses unbounded or malformed reports", () => {
  assert(HeartbeatStatsSchema.safeParse(report(1, 0, 1)).success);
  const big = report(1, 0, 1);
  big.edges = Array.from({ length: 257 }, () => big.edges[0]!);
  assert(!HeartbeatStatsSchema.safeParse(big).success);
  const bad = report(1, 0, 1);
  bad.edges[0]!.buckets = [1, 2];
  assert(!HeartbeatStatsSchema.safeParse(bad).success);
  assert(!HeartbeatStatsSchema.safeParse({ ...report(1, 0, 1), extra: 1 }).success);
});
