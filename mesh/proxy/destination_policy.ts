/**
 * A destination's policy layers built from its effective Policy: the balancer, the retry
 * policy with its budget, and outlier detection (with what an ejection does: the balancers
 * skip the endpoint, a metric counts it, the log says it). Kept apart from `destination.ts`,
 * which holds the endpoints and plans requests over these layers.
 * @module
 */
import {
  type Balancer,
  createBalancer,
  type Endpoint as BalancedEndpoint,
} from "../balance/mod.ts";
import { MAX_ATTEMPTS } from "../forward/mod.ts";
import { OutlierDetector, RETRY_DEFAULTS, RetryPolicy } from "../resilience/mod.ts";
import {
  defaultCircuitBreaker,
  defaultOutlierDetection,
  defaultPolicy,
  defaultRetries,
} from "./policy_defaults.ts";
import type { DestinationDeps, EffectivePolicy, Policy } from "./destination_types.ts";

/**
 * The policy a destination gets without a Policy resource, and what fills in the sections a
 * Policy leaves out: retries on connect failure and reset (2 tries), Envoy's breaker limits,
 * and outlier detection after 5 consecutive failures.
 */
export function effectivePolicy(service: string, p?: Policy): EffectivePolicy {
  const base = p ?? defaultPolicy(service);
  return {
    ...base,
    retries: base.retries ?? defaultRetries(),
    circuit_breaker: base.circuit_breaker ?? defaultCircuitBreaker(),
    outlier_detection: base.outlier_detection ?? defaultOutlierDetection(),
  };
}

/** The balancer the policy's `load_balancer` and `locality` sections ask for, over `endpoints`. */
export function newBalancer(
  p: EffectivePolicy,
  endpoints: readonly BalancedEndpoint[],
  deps: DestinationDeps,
): Balancer {
  return createBalancer(p.load_balancer.algorithm, endpoints, {
    now: deps.now,
    random: deps.random,
    localZone: deps.zone,
    preferZone: p.locality.prefer_zone,
    failoverBelowHealthyPercent: p.locality.failover_below_healthy_percent,
  });
}

/** The retry policy (and budget) of the policy's `retries` section. */
export function newRetryPolicy(p: EffectivePolicy, deps: DestinationDeps): RetryPolicy {
  const r = p.retries;
  return new RetryPolicy({
    // The forwarder never makes more than MAX_ATTEMPTS tries; saying so here keeps every
    // positive retry decision followed by another pick.
    attempts: Math.min(Math.max(1, r.attempts), MAX_ATTEMPTS),
    on: r.on,
    backoffBaseMs: r.backoff.base,
    backoffMaxMs: r.backoff.max,
    budgetPercent: r.budget_percent,
    minRetriesPerSecond: RETRY_DEFAULTS.minRetriesPerSecond / Math.max(1, deps.workers ?? 1),
    retryNonIdempotent: r.retry_non_idempotent,
  }, { now: deps.now, random: deps.random });
}

/**
 * Outlier detection of the policy's `outlier_detection` section for `service`; `setEjected`
 * applies an ejection or a restore to the destination's balancers.
 */
export function newOutlierDetector(
  service: string,
  p: EffectivePolicy,
  deps: DestinationDeps,
  setEjected: (key: string, ejected: boolean) => void,
): OutlierDetector {
  const o = p.outlier_detection;
  const log = deps.logger;
  return new OutlierDetector({
    consecutive5xx: o.consecutive_5xx,
    consecutiveConnectFailures: o.consecutive_connect_failures,
    intervalMs: o.interval,
    baseEjectionMs: o.base_ejection,
    maxEjectionPercent: o.max_ejection_percent,
  }, {
    now: deps.now,
    onEvent: (e) => {
      switch (e.kind) {
        case "ejected":
          setEjected(e.key, true);
          deps.metrics.outlierEjections.labels(service, e.reason).inc();
          log.warn("endpoint ejected", {
            destination: service,
            endpoint: e.key,
            reason: e.reason,
            duration_ms: e.durationMs,
            times: e.timesEjected,
          });
          break;
        case "restored":
          setEjected(e.key, false);
          log.info("endpoint restored", { destination: service, endpoint: e.key });
          break;
        case "overflow":
          log.debug("ejection refused by max_ejection_percent", {
            destination: service,
            endpoint: e.key,
          });
          break;
      }
    },
  });
}
