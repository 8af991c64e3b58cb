/**
 * Envoy-style circuit breaking: hard limits on connections, pending requests and active
 * requests per destination cluster. Counting, not state: a request over a limit is rejected
 * at once (503 with the reason) instead of queueing behind an upstream that cannot keep up.
 * @module
 */

/** The counted resources of Policy `circuit_breaker`. */
export type CircuitResource = "connections" | "pending" | "requests";

/** Defaults (Envoy's) when Policy `circuit_breaker` leaves a limit out. */
export const CIRCUIT_BREAKER_DEFAULTS = Object.freeze({
  maxConnections: 1024,
  maxPending: 1024,
  maxRequests: 1024,
});

/** Limits of {@linkcode CircuitBreaker}. */
export interface CircuitBreakerLimits {
  /** Open upstream connections. @default 1024 */
  maxConnections?: number;
  /** Requests waiting for a connection. @default 1024 */
  maxPending?: number;
  /** Requests in flight. @default 1024 */
  maxRequests?: number;
}

/** A request was rejected because a limit was reached: SPEC's 503. */
export class CircuitOpenError extends Error {
  override readonly name = "CircuitOpenError";
  /** HTTP status the proxy answers with. */
  readonly status = 503;
  /** Creates the error naming the resource and its limit. */
  constructor(
    readonly destination: string,
    readonly resource: CircuitResource,
    readonly limit: number,
  ) {
    super(`circuit breaker open for ${destination}: ${resource} at limit ${limit}`);
  }
}

/** Counters and limits of one destination cluster. */
export class CircuitBreaker {
  /** Current counts. */
  connections = 0;
  /** Current counts. */
  pending = 0;
  /** Current counts. */
  requests = 0;
  /** Rejections so far, per resource (for `skein_circuit_breaker_rejections_total`). */
  readonly rejections: Record<CircuitResource, number> = {
    connections: 0,
    pending: 0,
    requests: 0,
  };
  private readonly _max: Record<CircuitResource, number>;

  /** Creates a breaker for `destination`. */
  constructor(readonly destination: string, limits: CircuitBreakerLimits = {}) {
    this._max = {
      connections: limits.maxConnections ?? CIRCUIT_BREAKER_DEFAULTS.maxConnections,
      pending: limits.maxPending ?? CIRCUIT_BREAKER_DEFAULTS.maxPending,
      requests: limits.maxRequests ?? CIRCUIT_BREAKER_DEFAULTS.maxRequests,
    };
  }

  /** The limit of `r`. */
  limit(r: CircuitResource): number {
    return this._max[r];
  }

  /** Takes one unit of `r` if under its limit; counts a rejection otherwise. */
  tryAcquire(r: CircuitResource): boolean {
    if (this[r] >= this._max[r]) {
      this.rejections[r]++;
      return false;
    }
    this[r]++;
    return true;
  }

  /** Returns one unit of `r`. Releasing more than was acquired is a programming error. */
  release(r: CircuitResource): void {
    if (this[r] <= 0) throw new Error(`circuit breaker ${this.destination}: ${r} released below 0`);
    this[r]--;
  }

  /** Like {@linkcode tryAcquire} but throws {@linkcode CircuitOpenError} when rejected. */
  acquire(r: CircuitResource): void {
    if (!this.tryAcquire(r)) throw new CircuitOpenError(this.destination, r, this._max[r]);
  }

  /** Updates limits from a new Policy without losing the current counts. */
  setLimits(limits: CircuitBreakerLimits): void {
    this._max.connections = limits.maxConnections ?? CIRCUIT_BREAKER_DEFAULTS.maxConnections;
    this._max.pending = limits.maxPending ?? CIRCUIT_BREAKER_DEFAULTS.maxPending;
    this._max.requests = limits.maxRequests ?? CIRCUIT_BREAKER_DEFAULTS.maxRequests;
  }
}
