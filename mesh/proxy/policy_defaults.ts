/**
 * The Policy a destination gets without a Policy resource, and the defaults of the sections a
 * Policy leaves out, as plain data. They equal what the `Policy` schema fills in (a test holds
 * them to it), written out so a data-plane worker needs no schema library to know them.
 * @module
 */
import type { Policy } from "./destination_types.ts";

/** The retry section a Policy without `retries` gets. */
export function defaultRetries(): NonNullable<Policy["retries"]> {
  return {
    attempts: 2,
    backoff: { base: 25, max: 1000 },
    on: ["connect_failure", "reset"],
    budget_percent: 20,
    retry_non_idempotent: false,
  };
}

/** The circuit-breaker section a Policy without `circuit_breaker` gets (Envoy's limits). */
export function defaultCircuitBreaker(): NonNullable<Policy["circuit_breaker"]> {
  return { max_requests: 1024 };
}

/** The outlier-detection section a Policy without `outlier_detection` gets. */
export function defaultOutlierDetection(): NonNullable<Policy["outlier_detection"]> {
  return {
    consecutive_5xx: 5,
    consecutive_connect_failures: 5,
    interval: 10_000,
    base_ejection: 30_000,
    max_ejection_percent: 50,
  };
}

/** The whole Policy of `service` when no Policy resource names it. */
export function defaultPolicy(service: string): Policy {
  return {
    kind: "Policy",
    service,
    load_balancer: { algorithm: "p2c_least_request" },
    locality: { prefer_zone: true, failover_below_healthy_percent: 70 },
    timeout: 15_000,
    retries: defaultRetries(),
    circuit_breaker: defaultCircuitBreaker(),
    outlier_detection: defaultOutlierDetection(),
  };
}

/** The policy of the hop to a local app: one try, never ejected (there is nowhere else to go). */
export function localAppPolicy(service: string): Policy {
  return {
    ...defaultPolicy(service),
    load_balancer: { algorithm: "round_robin" },
    retries: { ...defaultRetries(), attempts: 1 },
    outlier_detection: { ...defaultOutlierDetection(), max_ejection_percent: 0 },
  };
}
