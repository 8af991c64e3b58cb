/**
 * The types a destination and its per-request decisions share (kept apart so the decision
 * module needs nothing from the destination module).
 * @module
 */
import type { z } from "zod";
import type { Logger } from "../../common/log.ts";
import type { Policy as PolicySchema, Route as RouteSchema } from "../../config/resource_schema.ts";
import type { ProxyMetrics } from "../observe/proxy_metrics.ts";
import type { SharedLimits } from "../resilience/shared_limits.ts";

/** A validated Policy resource. */
export type Policy = z.infer<typeof PolicySchema>;
/** A validated Route resource. */
export type Route = z.infer<typeof RouteSchema>;

/** The effective policy of a destination: the Policy resource with every section filled in. */
export type EffectivePolicy =
  & Omit<Policy, "retries" | "circuit_breaker" | "outlier_detection">
  & {
    retries: NonNullable<Policy["retries"]>;
    circuit_breaker: NonNullable<Policy["circuit_breaker"]>;
    outlier_detection: NonNullable<Policy["outlier_detection"]>;
  };

/** What a destination needs from the proxy around it. */
export interface DestinationDeps {
  /** This proxy's zone, for locality-aware balancing. */
  zone: string;
  /** Millisecond clock. */
  now: () => number;
  /** Uniform random in [0, 1). */
  random: () => number;
  /** Metric families. */
  metrics: ProxyMetrics;
  /** Structured logger. */
  logger: Logger;
  /** The `source` label of this proxy's requests. */
  source: string;
  /** In-flight counts shared by all workers (circuit breaker `max_requests`). */
  limits: SharedLimits;
  /**
   * Worker threads sharing the traffic. Each worker keeps its own retry budget, so the budget's
   * fixed reserve (retries per second allowed regardless of traffic) is split between them.
   * @default 1
   */
  workers?: number;
}
