import { assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { ProxyMetrics } from "./proxy_metrics.ts";
import { DenialTap, edgesFromMetrics } from "./heartbeat_stats.ts";

Deno.test("edgesFromMetrics reads the proxy's own counters per call edge", () => {
  const m = new ProxyMetrics();
  const out = m.route("billing", "ledger", "default");
  out.record(200, 0.004);
  out.record(503, 0.2);
  m.route("frontend", "billing", "inbound").record(200, 0.02);
  m.circuitBreakerRejections.labels("ledger", "requests").inc(4);
  const edges = edgesFromMetrics(m.render(), new Map([["ledger", 3]]));
  const o = edges.find((e) => e.side === "out")!;
  assertEquals(
    [o.source, o.destination, o.requests, o.errors, o.inflight, o.rejections],
    ["billing", "ledger", 2, 1, 3, 4],
  );
  assertEquals(o.buckets.reduce((a, b) => a + b, 0), 2);
  const i = edges.find((e) => e.side === "in")!;
  assertEquals([i.source, i.destination, i.requests, i.errors], ["frontend", "billing", 1, 0]);
});

Deno.test("DenialTap notes audit denials, once each, through derived loggers", () => {
  const tap = new DenialTap(() => 42);
  const log = tap.tap(nullLogger);
  const audit = log.with({ component: "audit" });
  audit.info("authz", {
    type: "authz",
    caller: "spiffe://td/svc/x",
    service: "ledger",
    method: "GET",
    path: "/a",
    decision: "deny",
    reason: "default_deny",
  });
  audit.info("authz", { decision: "allow", service: "ledger" });
  log.info("authz", { decision: "deny" }); // not an audit line
  assertEquals(tap.take(), [{
    at: 42,
    caller: "spiffe://td/svc/x",
    service: "ledger",
    method: "GET",
    path: "/a",
    reason: "default_deny",
  }]);
  assertEquals(tap.take(), []);
});
