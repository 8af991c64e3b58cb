import assert from "node:assert/strict";
import { parsePrometheusText } from "../../common/metrics.ts";
import { ProxyMetrics, statusClass } from "./proxy_metrics.ts";

Deno.test("statusClass buckets statuses and marks missing responses as error", () => {
  const table: [number, string][] = [
    [200, "2xx"],
    [101, "1xx"],
    [302, "3xx"],
    [429, "4xx"],
    [
      503,
      "5xx",
    ],
    [0, "error"],
    [600, "error"],
  ];
  for (const [s, want] of table) assert.equal(statusClass(s), want, String(s));
});

Deno.test("the proxy exposes every SPEC metric with skein_ names that parse", () => {
  let now = 1_000_000;
  const m = new ProxyMetrics(undefined, () => now);
  const r = m.route("payments", "ledger", "default");
  assert.equal(m.route("payments", "ledger", "default"), r, "route series are cached");
  r.record(200, 0.02);
  r.record(201, 0.03);
  r.record(503, 2);
  r.record(0, 0.5);
  m.retries.labels("ledger").inc();
  m.circuitBreakerRejections.labels("ledger", "pending").inc();
  m.outlierEjections.labels("ledger", "consecutive_5xx").inc();
  m.tcpBytes.labels("db", "sent").inc(1234);
  m.tcpConnections.labels("db").inc();
  m.activeConnections.labels("inbound").inc();
  m.setCertificateNotAfter(now + 3600_000);
  now += 600_000;
  const fams = parsePrometheusText(m.render());
  for (
    const name of [
      "skein_requests_total",
      "skein_request_duration_seconds",
      "skein_retries_total",
      "skein_circuit_breaker_rejections_total",
      "skein_outlier_ejections_total",
      "skein_tcp_bytes_total",
      "skein_tcp_connections_total",
      "skein_active_connections",
      "skein_certificate_expiry_seconds",
    ]
  ) assert.ok(fams.has(name), name);
  const req = fams.get("skein_requests_total")!.samples;
  const byClass = new Map(req.map((s) => [s.labels.status_class, s.value]));
  assert.equal(byClass.get("2xx"), 2);
  assert.equal(byClass.get("5xx"), 1);
  assert.equal(byClass.get("error"), 1);
  assert.equal(req[0]!.labels.source, "payments");
  assert.equal(req[0]!.labels.destination, "ledger");
  const count = fams.get("skein_request_duration_seconds")!.samples.find((s) =>
    s.name === "skein_request_duration_seconds_count"
  );
  assert.equal(count?.value, 4);
  assert.equal(fams.get("skein_certificate_expiry_seconds")!.samples[0]!.value, 3000);
});

Deno.test("recordMux exports mux totals per direction and advances counters by deltas", () => {
  const m = new ProxyMetrics();
  const sample = (name: string, direction?: string) => {
    const fam = parsePrometheusText(m.render()).get(name);
    return fam?.samples.find((s) => direction === undefined || s.labels.direction === direction)
      ?.value;
  };
  m.recordMux("outbound", { open: 2, sessions: 2, streams: 5 });
  m.recordMux("inbound", { open: 1, sessions: 1, streams: 4, writes: 3, frames: 12 });
  m.recordMuxPlain(1);
  assert.equal(sample("skein_mesh_sessions", "outbound"), 2);
  assert.equal(sample("skein_mesh_sessions", "inbound"), 1);
  assert.equal(sample("skein_mesh_streams_total", "outbound"), 5);
  assert.equal(sample("skein_mesh_writes_total", "inbound"), 3);
  assert.equal(sample("skein_mesh_frames_total", "inbound"), 12);
  // A side that cannot count writes exports none rather than a misleading zero.
  assert.equal(sample("skein_mesh_writes_total", "outbound"), undefined);
  assert.equal(sample("skein_mesh_plain_connections_total"), 1);

  m.recordMux("outbound", { open: 0, sessions: 3, streams: 9 });
  m.recordMux("inbound", { open: 1, sessions: 1, streams: 4, writes: 7, frames: 20 });
  m.recordMuxPlain(1);
  assert.equal(sample("skein_mesh_sessions", "outbound"), 0);
  assert.equal(sample("skein_mesh_sessions_opened_total", "outbound"), 3);
  assert.equal(sample("skein_mesh_streams_total", "outbound"), 9);
  assert.equal(sample("skein_mesh_writes_total", "inbound"), 7);
  assert.equal(sample("skein_mesh_frames_total", "inbound"), 20);
  assert.equal(sample("skein_mesh_plain_connections_total"), 1);
});
