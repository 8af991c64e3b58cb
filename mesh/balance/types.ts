/**
 * Types shared by the load-balancing algorithms.
 * @module
 */

/** Health of an endpoint as the catalog reports it. */
export type EndpointHealth = "passing" | "warning" | "critical";

/** One upstream endpoint a balancer can pick: another proxy's `inbound` for one instance. */
export interface Endpoint {
  /** Stable identity across catalog updates (e.g. the instance id); stats are kept per key. */
  readonly key: string;
  /** Where to connect. */
  readonly hostname: string;
  /** Where to connect. */
  readonly port: number;
  /** Relative share of traffic; `<= 0` drains the endpoint. */
  readonly weight: number;
  /** Locality zone; `""` when unknown. */
  readonly zone: string;
  /** Instance version, used by routes to select backends. */
  readonly version?: string;
  /** Catalog health; only `passing` endpoints receive traffic. @default "passing" */
  readonly health?: EndpointHealth;
}

/** The load-balancing algorithms of `Policy.load_balancer.algorithm`. */
export type BalancerPolicy = "round_robin" | "p2c_least_request" | "ewma" | "ring_hash";

/** All balancer policies, for validation and tests. */
export const BALANCER_POLICIES: readonly BalancerPolicy[] = [
  "round_robin",
  "p2c_least_request",
  "ewma",
  "ring_hash",
];

/** Mutable per-endpoint statistics, kept across `update()` calls while the key stays. */
export class EndpointState {
  /** The latest catalog view of this endpoint. */
  endpoint: Endpoint;
  /** Requests started and not yet ended. */
  active = 0;
  /** Peak-EWMA latency estimate in ms, as of `ewmaStampMs`. */
  ewmaMs: number;
  /** When `ewmaMs` was last written. */
  ewmaStampMs: number;
  /** Whether `ewmaMs` holds a real observation rather than the new-endpoint penalty. */
  ewmaObserved = false;
  /** Set by outlier detection; an ejected endpoint gets no traffic. */
  ejected = false;

  /** Creates the state of a newly seen endpoint with a pessimistic latency estimate. */
  constructor(endpoint: Endpoint, nowMs: number, initialEwmaMs: number) {
    this.endpoint = endpoint;
    this.ewmaMs = initialEwmaMs;
    this.ewmaStampMs = nowMs;
  }

  /** Whether the endpoint may receive traffic at all. */
  eligible(): boolean {
    const h = this.endpoint.health;
    return !this.ejected && (h === undefined || h === "passing") && this.endpoint.weight > 0;
  }
}

/** One algorithm over one pool of eligible endpoints (a locality tier). */
export interface Picker {
  /** Replaces the pool; called on catalog updates and ejections, never per request. */
  rebuild(states: readonly EndpointState[]): void;
  /** Chooses an endpoint not in `exclude`, or null when none is left. */
  pick(exclude: ReadonlySet<string> | undefined, hashKey: string | undefined): EndpointState | null;
}
