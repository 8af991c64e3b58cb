/**
 * Load balancing for the proxy: which endpoint of a destination gets the next request.
 *
 * Algorithms (`Policy.load_balancer.algorithm`): `round_robin` (smooth weighted, nginx),
 * `p2c_least_request` (power of two choices on active requests per weight), `ewma`
 * (peak-EWMA latency, Linkerd/Finagle) and `ring_hash` (consistent hashing on a header value).
 * Around the algorithm sit locality tiers (prefer the local zone, spill over when its healthy
 * share falls below `failover_below_healthy_percent`); see `balancer.ts`.
 *
 * The seam a forwarder uses, per request:
 *
 * ```ts
 * const tried = new Set<string>();          // only allocated when retrying
 * const ep = balancer.pick(tried, hashKey);  // hashKey: the `hash_on` header value, if any
 * if (ep === null) throw new NoHealthyEndpointError(dest, balancer.stats().length, tried.size);
 * balancer.onStart(ep);
 * // ... forward, measure ...
 * balancer.onEnd(ep, latencyMs, ok);         // ok: a response below 500
 * ```
 *
 * On catalog changes call `update(endpoints)` (per-endpoint stats survive for keys that stay);
 * on outlier ejection/restoration call `setEjected(key, bool)`. Nothing here does I/O or reads
 * the real clock: `now` and `random` are injected.
 * @module
 */
export * from "./types.ts";
export * from "./balancer.ts";
export { hashString } from "./ring_hash.ts";
export { DEFAULT_EWMA_DECAY_MS, DEFAULT_EWMA_PENALTY_MS } from "./ewma.ts";
export { DEFAULT_RING_MAX_SIZE, DEFAULT_RING_VNODES_PER_WEIGHT } from "./ring_hash.ts";
