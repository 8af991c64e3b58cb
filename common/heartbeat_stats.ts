/**
 * What a proxy reports with its heartbeats for the control node's dashboard: cumulative
 * counters per call edge (read from the metrics it already keeps), recent authorization
 * denials and its certificates' expiry. The control node validates it (zod) and keeps a
 * bounded window (`control/dashboard/`). Bounds are part of the wire contract.
 * @module
 */

/** Most call edges in one report. */
export const MAX_STATS_EDGES = 256;
/** Most denials in one report (the most recent ones). */
export const MAX_STATS_DENIALS = 32;
/** Most certificates in one report. */
export const MAX_STATS_CERTS = 64;
/** Upper bounds (seconds) of the latency buckets; the proxy's request duration buckets. */
export const STATS_BUCKETS: readonly number[] = [
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

/** Cumulative counters of one call edge as one proxy saw it. */
export interface EdgeStats {
  /** The calling service (for inbound edges: the caller's label). */
  source: string;
  /** The called service. */
  destination: string;
  /** `out`: measured at the caller's proxy; `in`: at the callee's. */
  side: "out" | "in";
  /** Requests so far. */
  requests: number;
  /** Of which failed: 5xx or no response. */
  errors: number;
  /** Requests per latency bucket (not cumulative), one more than STATS_BUCKETS (+Inf). */
  buckets: number[];
  /** Requests in flight now (the destination's circuit-breaker count). */
  inflight: number;
  /** Circuit-breaker rejections so far. */
  rejections: number;
}

/** One authorization denial at a callee proxy. */
export interface DenialStats {
  /** Epoch ms. */
  at: number;
  caller: string | null;
  service: string;
  method: string;
  path: string;
  reason: string;
}

/** A proxy's report. */
export interface HeartbeatStats {
  node: string;
  edges: EdgeStats[];
  denials: DenialStats[];
  /** The proxy's certificates: service and expiry (epoch ms). */
  certs: { service: string; not_after: number }[];
}
