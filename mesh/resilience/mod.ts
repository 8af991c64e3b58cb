/**
 * Resilience decisions for the proxy: timeouts, retries, circuit breaking, outlier detection,
 * rate limiting and active health checks. Pure and synchronous except the health prober; the
 * clock (`now(): number`, ms) and randomness (`random(): number`) are injected.
 *
 * Each failing layer has its own error class that carries the SPEC status it maps to
 * (`TimeoutError` 504, `CircuitOpenError` 503, `RateLimitedError` 429; `NoHealthyEndpointError`
 * 503 lives in `mesh/balance`), so the proxy's single rescue function can read `err.status`.
 *
 * The seam a forwarder uses, per request to a destination (one `RetryPolicy`,
 * `CircuitBreaker`, `OutlierDetector` and optional `TokenBucket` per destination):
 *
 * ```ts
 * if (bucket && !bucket.tryTake()) throw new RateLimitedError(svc, bucket.requestsPerSecond, bucket.waitMs());
 * breaker.acquire("requests");                       // CircuitOpenError -> 503
 * try {
 *   retry.recordRequest();
 *   const deadline = new Deadline(now(), policy.timeoutMs, policy.perTryTimeoutMs);
 *   let tried: Set<string> | undefined;
 *   for (let tries = 1; ; tries++) {
 *     const ep = balancer.pick(tried, hashKey) ?? throw NoHealthyEndpointError;
 *     const outcome = await forwardOnce(ep, deadline.tryTimeoutMs(now()));  // an Outcome
 *     outlier.report(ep.key, outcome);
 *     const d = retry.decide(method, outcome, tries, deadline.remainingMs(now()));
 *     if (!d.retry) return finish(outcome);   // timeout -> deadline.timeoutError(tryStart)
 *     (tried ??= new Set()).add(ep.key);
 *     await sleep(d.delayMs);
 *   }
 * } finally { breaker.release("requests"); }
 * ```
 *
 * `OutlierDetector` events (`ejected`/`restored`) go to `balancer.setEjected` and metrics;
 * its `tick()` runs every `intervalMs`. `HealthChecker.run()` probes the local app and its
 * status goes into the instance registration.
 * @module
 */
export * from "./outcome.ts";
export * from "./timeout.ts";
export * from "./retry.ts";
export * from "./circuit_breaker.ts";
export * from "./outlier.ts";
export * from "./rate_limit.ts";
export * from "./health_check.ts";
