/**
 * The zod boundary for the dashboard report proxies send with heartbeats
 * (common/heartbeat_stats.ts): every list and string bounded, every number finite.
 * @module
 */
import { z } from "zod";
import {
  type HeartbeatStats,
  MAX_STATS_CERTS,
  MAX_STATS_DENIALS,
  MAX_STATS_EDGES,
  STATS_BUCKETS,
} from "../../common/heartbeat_stats.ts";

const count = z.number().finite().min(0).max(Number.MAX_SAFE_INTEGER);
const label = z.string().max(256);

/** A proxy's dashboard report. */
export const HeartbeatStatsSchema: z.ZodType<HeartbeatStats> = z.strictObject({
  node: z.string().min(1).max(128),
  edges: z.array(z.strictObject({
    source: label,
    destination: label,
    side: z.enum(["out", "in"]),
    requests: count,
    errors: count,
    buckets: z.array(count).length(STATS_BUCKETS.length + 1),
    inflight: count,
    rejections: count,
  })).max(MAX_STATS_EDGES),
  denials: z.array(z.strictObject({
    at: count,
    caller: label.nullable(),
    service: label,
    method: z.string().max(32),
    path: label,
    reason: z.string().max(128),
  })).max(MAX_STATS_DENIALS),
  certs: z.array(z.strictObject({ service: label, not_after: count })).max(MAX_STATS_CERTS),
});
