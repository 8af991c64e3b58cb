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
} from "../common/metrics.ts";

/** Latency buckets in seconds: 1 ms to 30 s. */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

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
  /** Opaque TCP bytes; direction `sent` (to the upstream) or `received` (from it). */
  readonly tcpBytes: Counter<"destination" | "direction">;
  /** Opaque TCP connections opened. */
  readonly tcpConnections: Counter<"destination">;
  /** Open connections; direction `inbound` (to this proxy) or `outbound` (to upstreams). */
  readonly activeConnections: Gauge<"direction">;
  /** Seconds until this proxy's certificate expires (negative once expired). */
  readonly certificateExpiry: Gauge;
  private readonly _routes = new Map<string, RouteMetrics>();
  private _certNotAfterMs: number | undefined;

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

  /** Records the certificate's `notAfter` (ms since epoch) after each issue or renewal. */
  setCertificateNotAfter(notAfterMs: number): void {
    this._certNotAfterMs = notAfterMs;
  }

  /** Renders the exposition for `GET /metrics`. */
  render(): string {
    return this.registry.render();
  }
}
