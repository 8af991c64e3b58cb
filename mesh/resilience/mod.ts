/**
 * Resilience for the proxy: retries, outlier detection, active health checks and the state of
 * the circuit breaker and the rate limiter; the list below says where each feature lives. Pure
 * and synchronous except the two probes (health check, reach probe), which do I/O; the clock
 * (`now(): number`, ms) and randomness (`random(): number`) are injected.
 *
 * Where each resilience feature lives:
 * - retries: `retry.ts` ({@linkcode RetryPolicy}: eligibility, budget, backoff);
 * - outlier detection: `outlier.ts` ({@linkcode OutlierDetector}; its `ejected`/`restored`
 *   events go to `balancer.setEjected` and metrics, its `tick()` runs every `intervalMs`), and
 *   `reach_probe.ts`, which brings back early an endpoint ejected as unreachable once it
 *   accepts connections again;
 * - active health checks: `health_check.ts` (`HealthChecker.run()` probes the local app; its
 *   status goes into the instance registration);
 * - the circuit breaker (`max_requests` per destination): the in-flight counts every worker
 *   thread shares, `shared_limits.ts`, checked where a request is admitted to a destination
 *   (`mesh/proxy/destination.ts`);
 * - the rate limiter (`RateLimit`): the token buckets every worker thread shares,
 *   `shared_rate.ts`, applied at the callee's inbound by `mesh/proxy/inbound_rate_limit.ts`;
 * - timeouts (route and per-try): the forwarder's coarse timers, `mesh/forward/coarse_timers.ts`.
 * @module
 */
export * from "./outcome.ts";
export * from "./retry.ts";
export * from "./outlier.ts";
export * from "./health_check.ts";
