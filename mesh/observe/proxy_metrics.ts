/**
 * The proxy's Prometheus metrics (SPEC section 6), all prefixed `skein_`, created in one place
 * so names and label sets stay consistent. Per-request recording goes through cached
 * children ({@linkcode RouteMetrics}), so the hot path does no string work.
 * @module
 */
import {
  type Counter,
  type CounterChild,
  type Gauge,
  type Histogram,
  type HistogramChild,
  Registry,
} from "../../common/metrics.ts";
import type { MuxTotals } from "../mux/session_registry.ts";
import { STATS_BUCKETS } from "../../common/heartbeat_stats.ts";

/**
 * Latency buckets in seconds, 1 ms to 30 s: the buckets of the dashboard's reports, so a report
 * can carry this histogram bucket for bucket.
 */
export const REQUEST_DURATION_BUCKETS: readonly number[] = STATS_BUCKETS;

/** The `status_class` label of a status code; "error" when no response was received. */
export type StatusClass = "1xx" | "2xx" | "3xx" | "4xx" | "5xx" | "error";

const _CLASSES: readonly StatusClass[] = ["error", "1xx", "2xx", "3xx", "4xx", "5xx"];

/** Maps a status to its class; 0 or out-of-range (no response) is "error". */
export function statusClass(status: number): StatusClass {
  return _CLASSES[_classIndex(status)]!;
}

function _classIndex(status: number): number {
  return status >= 100 && status <= 599 ? Math.floor(status / 100) : 0;
}

/** Cached series of one (source, destination, route); keep it beside the route. */
export class RouteMetrics {
  private readonly _byClass: CounterChild[];
  private readonly _duration: HistogramChild;

  /** Resolves the children once. */
  constructor(
    requests: Counter<"source" | "destination" | "route" | "status_class">,
    duration: Histogram<"source" | "destination" | "route">,
    source: string,
    destination: string,
    route: string,
  ) {
    this._byClass = _CLASSES.map((c) => requests.labels(source, destination, route, c));
    this._duration = duration.labels(source, destination, route);
  }

  /** Records one finished request: its status (0 if none) and duration in seconds. */
  record(status: number, durationSeconds: number): void {
    this._byClass[_classIndex(status)]!.inc();
    this._duration.observe(durationSeconds);
  }
}

/** Which end of the mesh hop a skein-mux/1 session serves: we dialled it, or a peer did. */
export type MuxDirection = "outbound" | "inbound";

/** The proxy's metric families, registered on one registry. */
export class ProxyMetrics {
  /** Requests by source, destination, route and status class. */
  readonly requests: Counter<"source" | "destination" | "route" | "status_class">;
  /** Request latency. */
  readonly requestDuration: Histogram<"source" | "destination" | "route">;
  /** Retries sent. */
  readonly retries: Counter<"destination">;
  /** Requests refused by a circuit breaker, by resource (connections, pending, requests). */
  readonly circuitBreakerRejections: Counter<"destination" | "resource">;
  /** Outlier ejections, by reason. */
  readonly outlierEjections: Counter<"destination" | "reason">;
  /** Faults a Route injected, by kind (`delay`, `abort`). */
  readonly faults: Counter<"destination" | "kind">;
  /** Route mirror copies, by outcome (`sent`, `failed`, `dropped_concurrency`...). */
  readonly mirrors: Counter<"destination" | "outcome">;
  /** Inbound requests a RateLimit answered with 429, by local service. */
  readonly rateLimited: Counter<"service">;
  /** Opaque TCP bytes; direction `sent` (to the upstream) or `received` (from it). */
  readonly tcpBytes: Counter<"destination" | "direction">;
  /** Opaque TCP connections opened. */
  readonly tcpConnections: Counter<"destination">;
  /** Open connections; direction `inbound` (to this proxy) or `outbound` (to upstreams). */
  readonly activeConnections: Gauge<"direction">;
  /** Seconds until this proxy's certificate expires (negative once expired). */
  readonly certificateExpiry: Gauge;
  /** skein-mux/1 sessions open now, by direction. */
  readonly meshSessions: Gauge<"direction">;
  /** skein-mux/1 sessions established, by direction. */
  readonly meshSessionsOpened: Counter<"direction">;
  /** Inbound skein-mux/1 sessions a worker sent on to a less loaded worker of this proxy. */
  readonly meshSessionsRebalanced: Counter<"direction">;
  /** Streams opened (outbound) or accepted (inbound) on mux sessions. */
  readonly meshStreams: Counter<"direction">;
  /** Writes of mux sessions to their connections, each carrying a batch of frames. */
  readonly meshWrites: Counter<"direction">;
  /** Frames mux sessions sent. */
  readonly meshFrames: Counter<"direction">;
  /** Outbound mesh connections made plainly because the peer did not negotiate the mux. */
  readonly meshPlainConnections: Counter;
  private readonly _routes = new Map<string, RouteMetrics>();
  private _certNotAfterMs: number | undefined;
  /** Counter values seen at the previous {@linkcode recordMux}, by direction and field. */
  private readonly _muxSeen = new Map<string, number>();

  /** Registers the families on `registry`; `now` (ms) feeds the certificate expiry gauge. */
  constructor(readonly registry: Registry = new Registry(), now: () => number = Date.now) {
    this.requests = registry.counter({
      name: "skein_requests_total",
      help: "Requests handled by the proxy, by source, destination, route and status class.",
      labelNames: ["source", "destination", "route", "status_class"],
    });
    this.requestDuration = registry.histogram({
      name: "skein_request_duration_seconds",
      help: "Request duration as seen by the proxy, in seconds.",
      labelNames: ["source", "destination", "route"],
      buckets: REQUEST_DURATION_BUCKETS,
    });
    this.retries = registry.counter({
      name: "skein_retries_total",
      help: "Retries sent to upstream endpoints.",
      labelNames: ["destination"],
    });
    this.circuitBreakerRejections = registry.counter({
      name: "skein_circuit_breaker_rejections_total",
      help: "Requests refused because a circuit breaker limit was reached.",
      labelNames: ["destination", "resource"],
    });
    this.outlierEjections = registry.counter({
      name: "skein_outlier_ejections_total",
      help: "Endpoints ejected by outlier detection.",
      labelNames: ["destination", "reason"],
    });
    this.faults = registry.counter({
      name: "skein_faults_injected_total",
      help: "Faults a Route rule injected into the requests it selects, by kind.",
      labelNames: ["destination", "kind"],
    });
    this.mirrors = registry.counter({
      name: "skein_mirror_requests_total",
      help: "Copies of requests a Route mirrored, by outcome; dropped ones were not sent.",
      labelNames: ["destination", "outcome"],
    });
    this.rateLimited = registry.counter({
      name: "skein_rate_limited_total",
      help: "Inbound requests a RateLimit answered with 429, by local service.",
      labelNames: ["service"],
    });
    this.tcpBytes = registry.counter({
      name: "skein_tcp_bytes_total",
      help: "Bytes proxied over opaque TCP; direction sent is to the upstream.",
      labelNames: ["destination", "direction"],
    });
    this.tcpConnections = registry.counter({
      name: "skein_tcp_connections_total",
      help: "Opaque TCP connections opened.",
      labelNames: ["destination"],
    });
    this.activeConnections = registry.gauge({
      name: "skein_active_connections",
      help: "Open connections, inbound to this proxy or outbound to upstreams.",
      labelNames: ["direction"],
    });
    this.certificateExpiry = registry.gauge({
      name: "skein_certificate_expiry_seconds",
      help: "Seconds until the proxy certificate expires.",
    });
    this.meshSessions = registry.gauge({
      name: "skein_mesh_sessions",
      help: "skein-mux/1 sessions open now; outbound were dialled by this proxy, inbound by peers.",
      labelNames: ["direction"],
    });
    this.meshSessionsOpened = registry.counter({
      name: "skein_mesh_sessions_opened_total",
      help: "skein-mux/1 sessions established, by direction.",
      labelNames: ["direction"],
    });
    this.meshSessionsRebalanced = registry.counter({
      name: "skein_mesh_sessions_rebalanced_total",
      help: "Inbound skein-mux/1 sessions told to go to a less loaded worker of this proxy.",
      labelNames: ["direction"],
    });
    this.meshStreams = registry.counter({
      name: "skein_mesh_streams_total",
      help: "Streams opened (outbound) or accepted (inbound) on skein-mux/1 sessions.",
      labelNames: ["direction"],
    });
    this.meshWrites = registry.counter({
      name: "skein_mesh_writes_total",
      help:
        "Connection writes of skein-mux/1 sessions; frames_total / writes_total is the batching.",
      labelNames: ["direction"],
    });
    this.meshFrames = registry.counter({
      name: "skein_mesh_frames_total",
      help: "Frames sent by skein-mux/1 sessions.",
      labelNames: ["direction"],
    });
    this.meshPlainConnections = registry.counter({
      name: "skein_mesh_plain_connections_total",
      help: "Outbound mesh connections made without skein-mux/1 because the peer declined it.",
    });
    // Computed at scrape time so the gauge counts down without a timer.
    registry.onCollect(() => {
      if (this._certNotAfterMs !== undefined) {
        this.certificateExpiry.set((this._certNotAfterMs - now()) / 1000);
      }
    });
  }

  /** The cached series of a route; create once per route and reuse per request. */
  route(source: string, destination: string, route: string): RouteMetrics {
    const key = `${source}\u0000${destination}\u0000${route}`;
    let r = this._routes.get(key);
    if (r === undefined) {
      r = new RouteMetrics(this.requests, this.requestDuration, source, destination, route);
      this._routes.set(key, r);
    }
    return r;
  }

  /**
   * Copies the mux totals of one direction into the families; call it from a collect hook,
   * so per-frame work stays in the sessions' own counters. Counters advance by what moved
   * since the previous call.
   */
  recordMux(direction: MuxDirection, t: MuxTotals): void {
    this.meshSessions.labels(direction).set(t.open);
    this._advance(this.meshSessionsOpened, direction, t.sessions);
    this._advance(this.meshStreams, direction, t.streams);
    if (t.writes !== undefined) this._advance(this.meshWrites, direction, t.writes);
    if (t.frames !== undefined) this._advance(this.meshFrames, direction, t.frames);
    if (t.rebalanced !== undefined) {
      this._advance(this.meshSessionsRebalanced, direction, t.rebalanced);
    }
  }

  /** Records the running count of plain outbound mesh connections (see `recordMux`). */
  recordMuxPlain(plain: number): void {
    const before = this._muxSeen.get("plain") ?? 0;
    if (plain > before) this.meshPlainConnections.inc(plain - before);
    this._muxSeen.set("plain", plain);
  }

  private _advance(c: Counter<"direction">, direction: MuxDirection, v: number): void {
    const key = `${c.name}\u0000${direction}`;
    const before = this._muxSeen.get(key) ?? 0;
    const child = c.labels(direction);
    if (v > before) child.inc(v - before);
    this._muxSeen.set(key, v);
  }

  /** Records the certificate's `notAfter` (ms since epoch) after each issue or renewal. */
  setCertificateNotAfter(notAfterMs: number): void {
    this._certNotAfterMs = notAfterMs;
  }

  /** Renders the exposition for `GET /metrics`. */
  render(): string {
    return this.registry.render();
  }
}
