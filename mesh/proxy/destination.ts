/**
 * One destination service as a caller sees it: the catalog's endpoints, its `Policy` (balancer,
 * timeouts, retries with budget, circuit breaker, outlier detection) and `Route` (version
 * subsets), and the per-request {@linkcode RouteDecision} the forwarder drives.
 *
 * What the forwarder's layers (`mesh/forward/request_path.ts`) ask of it, per request:
 * - route (`decide`): the first matching Route rule (`route_rules.ts`) picks a backend version
 *   by weight (a balancer subset) and may inject a fault (`fault.ts`) or mirror the request
 *   (`mirror_target.ts`); then the circuit breaker's `requests` limit
 *   (`mesh/resilience/shared_limits.ts`, shared by all worker threads): over it, answer 503
 *   `overloaded` at once;
 * - balance (`Decision.pick`): an endpoint, never one already tried for this request;
 * - try (`Decision.onResult`): each outcome feeds the balancer (latency, in-flight) and
 *   outlier detection (ejections); the forwarder enforces `perTryTimeoutMs`/`timeoutMs`;
 * - retry (`Decision.retry`): the retry policy and its budget (`mesh/resilience/retry.ts`),
 *   asked only for a try the forwarder's rule (`mesh/forward/layer_retry_rule.ts`) lets through;
 * - record (`Decision.onDone`, once the response body has passed or the exchange failed): the
 *   breaker slot is released and the final status and whole-exchange latency go to
 *   `skein_requests_total` and the latency histogram.
 * The balancer, retry policy and outlier detector are built in `destination_policy.ts`.
 * @module
 */
import {
  type Balancer,
  type BalancerPolicy,
  type Endpoint as BalancedEndpoint,
  type EndpointStats,
} from "../balance/mod.ts";
import { type MirrorOutcome, ProxyError, type RouteDecision } from "../forward/mod.ts";
import { headerValue, type RequestHead } from "../http1/mod.ts";
import type { RouteMetrics } from "../observe/proxy_metrics.ts";
import type { OutlierDetector, RetryPolicy } from "../resilience/mod.ts";
import type { CatalogInstance } from "../discovery/mod.ts";
import { RequestLimit } from "../resilience/shared_limits.ts";
import { compileRoute, type RouteRule, type RuleMirror } from "./route_rules.ts";
import { decideFault, rolls } from "./fault.ts";
import { BalancedMirror } from "./mirror_target.ts";
import { Decision } from "./decision.ts";
import {
  effectivePolicy,
  newBalancer,
  newOutlierDetector,
  newRetryPolicy,
} from "./destination_policy.ts";
import type { DestinationDeps, EffectivePolicy, Policy, Route } from "./destination_types.ts";

export type { DestinationDeps, EffectivePolicy, Policy, Route } from "./destination_types.ts";
export { effectivePolicy } from "./destination_policy.ts";
import { capabilitiesOfKey } from "./capability.ts";

/** Route label of requests that matched no `Route` rule. */
export const DEFAULT_ROUTE_LABEL = "default";

/** Distinct callers given their own `source` label per inbound destination. */
export const MAX_SOURCE_LABELS = 256;
/** The `source` label of callers beyond {@linkcode MAX_SOURCE_LABELS}. */
export const OTHER_SOURCE_LABEL = "other";

/** The catalog view of one endpoint, as the balancer sees it. */
export function endpointOfInstance(i: CatalogInstance): BalancedEndpoint {
  return {
    key: `${i.address}:${i.port}`,
    hostname: i.address,
    port: i.port,
    weight: i.weight,
    zone: i.zone,
    version: i.version,
    health: i.health,
  };
}

/** A snapshot of a destination for the admin `/endpoints` page. */
export interface DestinationStats {
  /** Service name. */
  service: string;
  /** Balancing algorithm. */
  algorithm: BalancerPolicy;
  /** Endpoints that can receive traffic now. */
  eligible: number;
  /** Requests in flight (circuit breaker count, across all workers). */
  activeRequests: number;
  /** Retries the budget would allow now. */
  retryBudgetAvailable: number;
  /** Per-endpoint balancer state. */
  endpoints: EndpointStats[];
}

/** A destination service: its endpoints and the policy layers around them. */
export class Destination {
  /** The service name. */
  readonly service: string;
  /** The circuit breaker's `max_requests` limit, shared by all workers. */
  readonly requests: RequestLimit;
  /** Header lines added to every forwarded request (e.g. `x-skein-destination`). */
  readonly extraRequestHeaders: string | undefined;
  #deps: DestinationDeps;
  #policy: EffectivePolicy;
  #balancer: Balancer;
  #subsets = new Map<string, Balancer>();
  #retry: RetryPolicy;
  #outlier: OutlierDetector;
  #lastTick: number;
  #endpoints: BalancedEndpoint[] = [];
  #rules: RouteRule[] = [];
  /** Mirror target per rule (null where a rule has no mirror), parallel to `#rules`. */
  #mirrors: (BalancedMirror | null)[] = [];
  readonly #resolve: ((service: string) => Destination | null) | undefined;
  /** Header lines per endpoint key, when endpoints carry their own (capability, external). */
  readonly #headerOf: Map<string, string> | null;
  /** Whether endpoints are picked by capability (none left answers `no_capable_endpoint`). */
  readonly #byCapability: boolean;
  /** Versions some endpoint declares, so a rule naming another answers at once. */
  #versions = new Set<string>();
  readonly #defaultMetrics: RouteMetrics;
  readonly #routeMetrics = new Map<string, RouteMetrics>();
  /** Route metrics per caller (`source` label) on the inbound side, bounded. */
  readonly #sourceMetrics = new Map<string, RouteMetrics>();
  readonly #peerIdentity: string | undefined;
  readonly #routeLabel: string;
  /** Whether requests get the overall/per-try timeouts (not for the inbound side). */
  readonly #timeouts: boolean;

  /** Creates the destination with its effective policy and no endpoints yet. */
  constructor(
    service: string,
    deps: DestinationDeps,
    opts: {
      policy?: Policy;
      route?: Route;
      timeouts?: boolean;
      routeLabel?: string;
      /** Name of the shared in-flight slot. @default service */
      limitKey?: string;
      /** Pre-encoded header lines for every forwarded request. */
      extraRequestHeaders?: string;
      /** SPIFFE id every endpoint must present (mTLS between proxies); none = plaintext. */
      peerIdentity?: string;
      /** Another service's destination, for Route mirrors to a `service`. */
      resolve?: (service: string) => Destination | null;
      /** Endpoints picked by capability, across services (`setCapableInstances`). */
      capabilities?: boolean;
      /** Endpoints with header lines of their own (`setEndpointsWithHeaders`). */
      endpointHeaders?: boolean;
    } = {},
  ) {
    this.service = service;
    this.#deps = deps;
    this.extraRequestHeaders = opts.extraRequestHeaders;
    this.#peerIdentity = opts.peerIdentity;
    this.#resolve = opts.resolve;
    this.#byCapability = opts.capabilities === true;
    this.#headerOf = opts.capabilities || opts.endpointHeaders ? new Map() : null;
    this.#routeLabel = opts.routeLabel ?? DEFAULT_ROUTE_LABEL;
    this.#timeouts = opts.timeouts ?? true;
    this.#policy = effectivePolicy(service, opts.policy);
    this.#balancer = newBalancer(this.#policy, this.#endpoints, this.#deps);
    this.#retry = newRetryPolicy(this.#policy, this.#deps);
    this.#outlier = newOutlierDetector(
      this.service,
      this.#policy,
      this.#deps,
      (key, ejected) => this.#setEjected(key, ejected),
    );
    this.#lastTick = deps.now();
    this.requests = new RequestLimit(
      deps.limits,
      opts.limitKey ?? service,
      this.#policy.circuit_breaker.max_requests,
    );
    this.#defaultMetrics = deps.metrics.route(
      deps.source,
      service,
      opts.routeLabel ?? DEFAULT_ROUTE_LABEL,
    );
    this.setRoute(opts.route);
  }

  /** The policy in effect. */
  get policy(): EffectivePolicy {
    return this.#policy;
  }

  /** Applies a new Policy (or the defaults when removed), keeping counts and endpoint state. */
  setPolicy(p: Policy | undefined): void {
    const next = effectivePolicy(this.service, p);
    const prev = this.#policy;
    this.#policy = next;
    if (
      JSON.stringify(prev.load_balancer) !== JSON.stringify(next.load_balancer) ||
      JSON.stringify(prev.locality) !== JSON.stringify(next.locality)
    ) {
      this.#balancer = newBalancer(this.#policy, this.#endpoints, this.#deps);
      this.#subsets.clear();
      this.#applyEndpoints();
    }
    if (JSON.stringify(prev.retries) !== JSON.stringify(next.retries)) {
      this.#retry = newRetryPolicy(this.#policy, this.#deps);
    }
    if (JSON.stringify(prev.outlier_detection) !== JSON.stringify(next.outlier_detection)) {
      // A new detector starts with nobody ejected: restore whoever the old one had ejected.
      for (const ep of this.#endpoints) this.#setEjected(ep.key, false);
      this.#outlier = newOutlierDetector(
        this.service,
        this.#policy,
        this.#deps,
        (key, ejected) => this.#setEjected(key, ejected),
      );
      this.#outlier.setEndpoints(this.#endpoints.map((e) => e.key));
    }
    this.requests.setLimit(next.circuit_breaker.max_requests);
  }

  /** Applies a Route resource (or none): rules pick version subsets by weight. */
  setRoute(r: Route | undefined): void {
    this.#rules = compileRoute(r);
    this.#mirrors = this.#rules.map((rule) =>
      rule.mirror === null ? null : this.#mirrorOf(rule.mirror)
    );
  }

  /** The balancer behind this destination's default route (Route mirrors to this service). */
  get balancer(): Balancer {
    return this.#balancer;
  }

  #mirrorOf(m: RuleMirror): BalancedMirror {
    const count = (o: MirrorOutcome) => this.#deps.metrics.mirrors.labels(this.service, o).inc();
    if (m.version !== undefined) {
      const v = m.version;
      return new BalancedMirror(
        () => this.#versions.has(v) ? this.#subset(v) : null,
        this.extraRequestHeaders ?? "",
        count,
      );
    }
    const svc = m.service!;
    return new BalancedMirror(
      () => this.#resolve?.(svc)?.balancer ?? null,
      `x-skein-destination: ${svc}\r\n`,
      count,
    );
  }

  /** Replaces the endpoints from the catalog. */
  setInstances(instances: readonly CatalogInstance[]): void {
    const id = this.#peerIdentity;
    this.setEndpoints(
      id === undefined
        ? instances.map(endpointOfInstance)
        : instances.map((i) => ({ ...endpointOfInstance(i), identity: id })),
    );
  }

  /**
   * Replaces the endpoints with instances of any service (capability routing): each is keyed
   * by service and address (one proxy may front several of them), must present its own
   * service's identity, and is told which local app it is for.
   */
  setCapableInstances(
    instances: readonly CatalogInstance[],
    identityOf: ((service: string) => string) | undefined,
  ): void {
    const headers = this.#headerOf!;
    headers.clear();
    this.setEndpoints(instances.map((i) => {
      const key = `${i.service}@${i.address}:${i.port}`;
      headers.set(key, `x-skein-destination: ${i.service}\r\n`);
      const ep = { ...endpointOfInstance(i), key };
      return identityOf === undefined ? ep : { ...ep, identity: identityOf(i.service) };
    }));
  }

  /**
   * Replaces the endpoints with ones that each add their own header lines to the requests sent
   * to them (an external service's hosts each get their own `Host`).
   */
  setEndpointsWithHeaders(list: readonly { endpoint: BalancedEndpoint; headers: string }[]): void {
    const headers = this.#headerOf!;
    headers.clear();
    for (const x of list) headers.set(x.endpoint.key, x.headers);
    this.setEndpoints(list.map((x) => x.endpoint));
  }

  /** @internal The header lines of an endpoint that carries its own. */
  headerFor(key: string): string | undefined {
    return this.#headerOf?.get(key);
  }

  /** Whether endpoints carry their own header lines (capability or external endpoints). */
  get perEndpointHeaders(): boolean {
    return this.#headerOf !== null;
  }

  /** Replaces the endpoints (first of duplicate keys wins). */
  setEndpoints(endpoints: readonly BalancedEndpoint[]): void {
    this.#endpoints = [...endpoints];
    this.#versions = new Set(endpoints.map((e) => e.version ?? ""));
    this.#outlier.setEndpoints(this.#endpoints.map((e) => e.key));
    this.#applyEndpoints();
  }

  /** Endpoints ejected for being unreachable: what the proxy's reach probe connects to. */
  unreachableEjected(): BalancedEndpoint[] {
    const keys = new Set(this.#outlier.ejectedUnreachable());
    return keys.size === 0 ? [] : this.#endpoints.filter((e) => keys.has(e.key));
  }

  /** The reach probe connected to `key`: an endpoint ejected as unreachable comes back now. */
  reachable(key: string): void {
    if (this.#outlier.restoreReachable(key)) {
      this.#deps.logger.info("ejected endpoint is reachable again", {
        destination: this.service,
        endpoint: key,
      });
    }
  }

  /** Runs outlier detection's periodic work when its interval has passed. */
  tick(): void {
    const now = this.#deps.now();
    if (now - this.#lastTick >= this.#outlier.intervalMs) {
      this.#lastTick = now;
      this.#outlier.tick();
    }
  }

  /** Per-endpoint state for the admin pages. */
  stats(): DestinationStats {
    return {
      service: this.service,
      algorithm: this.#balancer.policy,
      eligible: this.#balancer.eligibleCount(),
      activeRequests: this.requests.active,
      retryBudgetAvailable: this.#retry.budget.available(),
      endpoints: this.#balancer.stats(),
    };
  }

  /**
   * Plans one HTTP request, or refuses it (503 when the breaker is at its limit). `source`
   * overrides the `source` label (the verified caller on the inbound side).
   */
  decide(head: RequestHead, source?: string): RouteDecision | ProxyError {
    let balancer = this.#balancer;
    let metrics = this.#defaultMetrics;
    let subset: string | undefined;
    let delayMs = 0;
    let mirror: BalancedMirror | null = null;
    const rules = this.#rules;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (!rule.matches(head)) continue;
      metrics = this.#metricsFor(rule.label);
      if (rule.fault !== null) {
        const f = decideFault(rule.fault, this.#deps.random);
        if (f.kind === "abort") {
          this.#deps.metrics.faults.labels(this.service, "abort").inc();
          metrics.record(f.status, 0);
          return new ProxyError(
            f.status,
            "fault_abort",
            `fault injected by Route ${this.service} ${rule.label}`,
          );
        }
        if (f.kind === "delay") {
          this.#deps.metrics.faults.labels(this.service, "delay").inc();
          delayMs = f.ms;
        }
      }
      const version = rule.version(head, this.#deps.random);
      if (version !== undefined) {
        if (!this.#versions.has(version)) {
          metrics.record(503, 0);
          return new ProxyError(
            503,
            "no_endpoint",
            `no instance of ${this.service} has version ${version} (Route ${rule.label})`,
            `x-skein-version: ${_headerSafe(version)}\r\n`,
          );
        }
        balancer = this.#subset(version);
        subset = version;
      }
      const m = this.#mirrors[i]!;
      if (m !== null && rolls(rule.mirror!.percent, this.#deps.random)) mirror = m;
      break;
    }
    if (this.#byCapability && this.#endpoints.length === 0) {
      metrics.record(503, 0);
      return new ProxyError(
        503,
        "no_capable_endpoint",
        `no instance declares the capabilities ${capabilitiesOfKey(this.service).join(", ")}`,
      );
    }
    if (source !== undefined && source !== this.#deps.source) {
      metrics = this.#metricsForSource(source);
    }
    if (!this.requests.tryAcquire()) {
      this.#deps.metrics.circuitBreakerRejections.labels(this.service, "requests").inc();
      metrics.record(503, 0);
      return new ProxyError(
        503,
        "overloaded",
        `circuit breaker open for ${this.service}: ${this.requests.active} requests in flight, limit ${this.requests.limit}`,
      );
    }
    this.#retry.recordRequest();
    const hashOn = this.#policy.load_balancer.hash_on?.header;
    const hashKey = hashOn !== undefined ? headerValue(head, hashOn) ?? undefined : undefined;
    const d = new Decision(this, balancer, metrics, head.method, hashKey, false);
    if (delayMs > 0) d.delayMs = delayMs;
    if (mirror !== null) d.mirror = mirror;
    if (subset !== undefined) d.subset = subset;
    return d;
  }

  /** Plans one opaque TCP connection: only connect failures are retried. */
  decideTcp(): RouteDecision | ProxyError {
    if (!this.requests.tryAcquire()) {
      this.#deps.metrics.circuitBreakerRejections.labels(this.service, "requests").inc();
      return new ProxyError(503, "overloaded", `circuit breaker open for ${this.service}`);
    }
    this.#retry.recordRequest();
    this.#deps.metrics.tcpConnections.labels(this.service).inc();
    return new Decision(this, this.#balancer, this.#defaultMetrics, "CONNECT", undefined, true);
  }

  /** @internal */ get retryPolicy(): RetryPolicy {
    return this.#retry;
  }
  /** @internal */ get outlier(): OutlierDetector {
    return this.#outlier;
  }
  /** @internal */ get deps(): DestinationDeps {
    return this.#deps;
  }
  /** @internal */ get timeouts(): boolean {
    return this.#timeouts;
  }

  #metricsForSource(source: string): RouteMetrics {
    let m = this.#sourceMetrics.get(source);
    if (m === undefined) {
      // Callers are mesh identities, but a bound keeps a misbehaving mesh from growing the
      // exposition without limit: later callers share one series.
      const label = this.#sourceMetrics.size < MAX_SOURCE_LABELS ? source : OTHER_SOURCE_LABEL;
      m = this.#deps.metrics.route(label, this.service, this.#routeLabel);
      if (label === source) this.#sourceMetrics.set(source, m);
    }
    return m;
  }

  #metricsFor(label: string): RouteMetrics {
    let m = this.#routeMetrics.get(label);
    if (m === undefined) {
      m = this.#deps.metrics.route(this.#deps.source, this.service, label);
      this.#routeMetrics.set(label, m);
    }
    return m;
  }

  #subset(version: string): Balancer {
    let b = this.#subsets.get(version);
    if (b === undefined) {
      b = newBalancer(this.#policy, this.#endpoints, this.#deps);
      b.update(this.#endpoints.filter((e) => e.version === version));
      for (const e of this.#endpoints) {
        if (this.#outlier.isEjected(e.key)) b.setEjected(e.key, true);
      }
      this.#subsets.set(version, b);
    }
    return b;
  }

  #applyEndpoints(): void {
    this.#balancer.update(this.#endpoints);
    for (const [v, b] of this.#subsets) b.update(this.#endpoints.filter((e) => e.version === v));
    for (const e of this.#endpoints) {
      if (this.#outlier.isEjected(e.key)) this.#setEjected(e.key, true);
    }
  }

  #setEjected(key: string, ejected: boolean): void {
    this.#balancer.setEjected(key, ejected);
    for (const b of this.#subsets.values()) b.setEjected(key, ejected);
  }
}

/** A version name as a header value: anything outside visible ASCII becomes `?`. */
function _headerSafe(v: string): string {
  return v.replace(/[^\x21-\x7e]/g, "?");
}
