// CPU per request of the traffic layers on the request path (route decision and finish):
// an upstream listener with no resources, with a Route of two weighted backends, with rules
// that do not match (header, path, method, fault) before it, and the inbound with and
// without a RateLimit. The differences between rows are what the layers cost.
import { nullLogger } from "../common/log.ts";
import { Registry } from "../common/metrics.ts";
import { parseRequestHead } from "../mesh/http1/mod.ts";
import { ProxyError, type RouteDecision } from "../mesh/forward/mod.ts";
import { ProxyMetrics } from "../mesh/observe/proxy_metrics.ts";
import { type Catalog, prepareCatalog } from "../mesh/discovery/mod.ts";
import { INBOUND_LISTENER, MeshRouter, upstreamListenerName } from "../mesh/proxy/router.ts";
import { SharedLimits } from "../mesh/resilience/shared_limits.ts";
import { Recorder } from "../mesh/observe/recorder.ts";
import { AccessLog } from "../mesh/observe/access_log.ts";
import type { SpanSink } from "../common/trace/span_sink.ts";

const b = new TextEncoder().encode(
  "GET /api/orders?id=7 HTTP/1.1\r\nhost: ledger\r\nuser-agent: bench\r\naccept: */*\r\n" +
    "x-request-id: 1234\r\n\r\n",
);
const head = parseRequestHead(b, 0, b.length);
const inst = (v: string, port: number) => ({
  id: `l${port}`,
  service: "ledger",
  node: "vm",
  address: "127.0.0.1",
  port,
  zone: "",
  version: v,
  weight: 1,
  tags: [],
  capabilities: [],
  meta: {},
  health: "passing",
});
const WEIGHTED = { backends: [{ version: "v1", weight: 95 }, { version: "v2", weight: 5 }] };
const NOT_MATCHING = [
  { match: { headers: { "x-canary": "1" } }, backends: [{ version: "v2" }] },
  { match: { path_prefix: "/admin" }, backends: [{ version: "v2" }] },
  { match: { method: "POST", path: "/api/orders" }, backends: [{ version: "v2" }] },
  {
    match: { headers: { "x-fault": { present: true } } },
    backends: [{ version: "v1" }],
    fault: { abort: { percent: 50, status: 503 } },
  },
];

function router(resources: unknown[], recorder?: Recorder): MeshRouter {
  const r = new MeshRouter({
    ...(recorder !== undefined ? { recorder } : {}),
    zone: "",
    now: () => performance.now(),
    random: Math.random,
    metrics: new ProxyMetrics(new Registry()),
    logger: nullLogger,
    source: "billing",
    limits: new SharedLimits(),
    upstreams: [{ service: "ledger" }],
    locals: [{ name: "ledger", port: 9 }],
  });
  r.applyCatalog(prepareCatalog({
    index: 1,
    services: { ledger: [inst("v1", 1), inst("v1", 2), inst("v2", 3)] },
    resources,
    trust: { roots: [], revoked: [] },
  } as unknown as Catalog, nullLogger));
  return r;
}

/** Requests per bench iteration: the access log's flush runs between iterations. */
const BATCH = 1000;

function bench(name: string, r: MeshRouter, listener: string, log?: AccessLog) {
  const l = { name: listener, protocol: "http" as const };
  const client = { address: "127.0.0.1", port: 1, identity: null };
  Deno.bench(`${name} (x${BATCH})`, async () => {
    for (let i = 0; i < BATCH; i++) {
      const d = r.route(head, l, client);
      if (d instanceof ProxyError) throw d;
      d.pick(1, new Set());
      (d as RouteDecision).onDone?.(200, 120);
    }
    await log?.flush();
  });
}

/** A sink that makes spans and drops them: what the record layer costs without an exporter. */
const nullSink: SpanSink = {
  start: () => ({ traceId: "0".repeat(32), spanId: "0".repeat(16), end: () => {} }),
  stats: () => ({ exported: 0, dropped: 0 }),
  shutdown: () => Promise.resolve(),
};
const devNull = () => new AccessLog("/dev/null", { logger: nullLogger });
const recorder = (log: AccessLog | null, sink: SpanSink | null) =>
  new Recorder({ node: "vm", sampling: 0.01, sink, accessLog: log });

const up = upstreamListenerName({ service: "ledger" });
bench("outbound, no Route", router([]), up);
bench(
  "outbound, Route of two weighted backends",
  router([{ kind: "Route", service: "ledger", rules: [WEIGHTED] }]),
  up,
);
bench(
  "outbound, four rules not matching, then two weighted backends",
  router([{ kind: "Route", service: "ledger", rules: [...NOT_MATCHING, WEIGHTED] }]),
  up,
);
bench("inbound, no RateLimit", router([]), INBOUND_LISTENER);
bench(
  "inbound, RateLimit (admitting)",
  router([{ kind: "RateLimit", service: "ledger", requests_per_second: 1e7, burst: 1e8 }]),
  INBOUND_LISTENER,
);

bench("outbound, record layer: tracing 1% (null sink)", router([], recorder(null, nullSink)), up);
const logOut = devNull();
bench("outbound, record layer: access log", router([], recorder(logOut, null)), up, logOut);
const logIn = devNull();
bench(
  "inbound, record layer: access log",
  router([], recorder(logIn, null)),
  INBOUND_LISTENER,
  logIn,
);
