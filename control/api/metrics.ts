/**
 * Prometheus text exposition of the control node's own metrics (`GET /metrics`).
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { ControlBackend } from "./backend.ts";
import type { CatalogFeedStats } from "./catalog_feed.ts";

/** Most distinct (route, status) label pairs counted, so odd paths cannot grow memory. */
export const MAX_REQUEST_SERIES = 512;

/** Counters the API keeps about its own traffic. */
export class ApiMetrics {
  #requests = new Map<string, number>();
  /** Requests this node forwarded to the leader. */
  forwarded = 0;
  /** Forwarding attempts that failed (leader unknown or unreachable). */
  forwardFailures = 0;
  /** Writes answered 503 because they did not commit in time. */
  writeTimeouts = 0;
  /** Proxy registry writes, rate-limited per identity (set by the API). */
  proxyWrites: { refused: number; tracked: number } | null = null;
  /** The HTTPS server's connection counters (set by whoever serves the API over TLS). */
  connections: { refused: Readonly<Record<string, number>>; handshakesInFlight: number } | null =
    null;

  /** Counts one request by route template and status code. */
  countRequest(method: string, route: string, status: number): void {
    const key = `${method}\u0000${route}\u0000${status}`;
    const prev = this.#requests.get(key);
    if (prev === undefined && this.#requests.size >= MAX_REQUEST_SERIES) return;
    this.#requests.set(key, (prev ?? 0) + 1);
  }

  /** Request counts as [method, route, status, count], sorted. */
  requestSeries(): [string, string, string, number][] {
    return [...this.#requests.entries()]
      .map(([k, v]) => {
        const [m = "", r = "", s = ""] = k.split("\u0000");
        return [m, r, s, v] as [string, string, string, number];
      })
      .sort((a, b) => (a[0] + a[1] + a[2] < b[0] + b[1] + b[2] ? -1 : 1));
  }
}

/** Middleware counting every answered request in `metrics` by method, route template and status. */
export function countRequests(metrics: ApiMetrics): MiddlewareHandler {
  return async function countRequests(c, next) {
    await next();
    const routes = matchedRoutes(c);
    const route = routes.length > 1 ? routes.at(-1)?.path ?? "unmatched" : "unmatched";
    metrics.countRequest(c.req.method, route, c.res.status);
  };
}

function _label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** Renders the control node metrics in the Prometheus text format (version 0.0.4). */
export function renderControlMetrics(
  backend: ControlBackend,
  m: ApiMetrics,
  feed?: CatalogFeedStats,
): string {
  const lines: string[] = [];
  const gauge = (name: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
  };
  const counter = (name: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
  };
  const h = backend.health();
  const st = backend.state();
  gauge("skein_control_raft_term", "Current Raft term.", [["", h.term]]);
  gauge("skein_control_raft_commit_index", "Highest committed log index.", [["", h.commit_index]]);
  gauge("skein_control_raft_applied_index", "Highest applied log index.", [["", h.applied_index]]);
  gauge("skein_control_is_leader", "1 when this node is the Raft leader.", [[
    "",
    backend.isLeader() ? 1 : 0,
  ]]);
  gauge("skein_control_catalog_index", "Raft index of the last catalog change.", [["", st.index]]);
  gauge("skein_control_services", "Services with at least one instance.", [[
    "",
    st.listServices().length,
  ]]);
  gauge(
    "skein_control_instances",
    "Registered instances by health.",
    Object.entries(st.healthCounts()).map(([k, v]) => [`{health="${_label(k)}"}`, v]),
  );
  gauge("skein_control_resources", "Current declarative resources.", [[
    "",
    st.listResources().length,
  ]]);
  gauge("skein_control_blocking_queries", "Blocking catalog queries waiting.", [[
    "",
    backend.watcher.waiting,
  ]]);
  counter(
    "skein_control_api_requests_total",
    "API requests by method, route template and status code.",
    m.requestSeries().map(([method, route, status, v]) => [
      `{method="${_label(method)}",route="${_label(route)}",code="${_label(status)}"}`,
      v,
    ]),
  );
  counter("skein_control_api_forwarded_total", "Requests forwarded to the leader.", [[
    "",
    m.forwarded,
  ]]);
  counter("skein_control_api_forward_failures_total", "Forwarding attempts that failed.", [[
    "",
    m.forwardFailures,
  ]]);
  counter("skein_control_api_write_timeouts_total", "Writes answered 503 for lack of quorum.", [[
    "",
    m.writeTimeouts,
  ]]);
  if (m.proxyWrites) {
    counter(
      "skein_control_proxy_writes_refused_total",
      "Registrations and deregistrations refused 429 too_many_writes: a proxy identity over its rate.",
      [["", m.proxyWrites.refused]],
    );
  }
  if (m.connections) {
    counter(
      "skein_control_api_connections_cut_total",
      "API connections closed by a bound: caps, timeouts (a client that stops sending or reading), certificate checks.",
      Object.entries(m.connections.refused).map(([k, v]) => [`{reason="${_label(k)}"}`, v]),
    );
    gauge("skein_control_api_handshakes", "TLS handshakes in progress on the API port.", [[
      "",
      m.connections.handshakesInFlight,
    ]]);
  }
  if (feed) {
    counter(
      "skein_control_catalog_answers_total",
      "Catalog answers by kind: whole, delta, or whole because a delta's base index was not served here.",
      [['{kind="full"}', feed.full], ['{kind="delta"}', feed.deltas], [
        '{kind="delta_fallback"}',
        feed.fallbacks,
      ]],
    );
    counter("skein_control_catalog_answer_bytes_total", "Bytes of catalog answers.", [[
      "",
      feed.bytes,
    ]]);
  }
  const fw = backend.writeForwardStats?.();
  if (fw) {
    gauge(
      "skein_control_write_forwards_in_flight",
      "Writes forwarded to the leader over the peer transport, waiting for its answer.",
      [["", fw.inFlight]],
    );
    counter(
      "skein_control_write_forwards_total",
      "Writes forwarded to the leader over the peer transport, by how they ended.",
      [['{result="sent"}', fw.sent], ['{result="answered"}', fw.answered], [
        '{result="lost"}',
        fw.lost,
      ]],
    );
  }
  return lines.join("\n") + "\n";
}
