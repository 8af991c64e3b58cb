/**
 * What a configuration reload asks of a running data plane, as plain data (it crosses to the
 * worker threads by `postMessage`, and workers load no schema code).
 * @module
 */
import type { ProxyLimitsConfig, UpstreamConfig } from "../../config/proxy_reload.ts";
import { upstreamKey } from "../../config/upstream_key.ts";

/** A change to a running data plane. */
export interface DataPlaneChange {
  /** Upstream listeners to open. */
  add: UpstreamConfig[];
  /** Keys (`service` or `service@caller`) of upstream listeners to stop accepting and drain. */
  remove: string[];
  /** Ports chosen for the added upstreams (by key), instead of their configured ones. */
  ports: Record<string, number>;
  /** The local apps behind `inbound` (by service name, app port, protocol), if they changed. */
  locals: { name: string; port: number; protocol?: string }[] | null;
  /** New limits, if any changed. */
  limits: ProxyLimitsConfig | null;
  /** How long removed listeners' in-flight requests may take, in ms. */
  drainMs: number;
}

/** What came of a {@linkcode DataPlaneChange}. */
export interface DataPlaneChangeResult {
  /** Bound ports of the upstreams opened, by key. */
  opened: Record<string, number>;
  /** Upstreams that could not be opened, with why. */
  failed: { key: string; error: string }[];
}

/** The result for a change sent to a data plane that never started: every upstream failed. */
export function notStartedResult(change: DataPlaneChange): DataPlaneChangeResult {
  // Keyed like the main thread's listeners, so a `service@caller` failure names its own one.
  return {
    opened: {},
    failed: change.add.map((u) => ({ key: upstreamKey(u), error: "not started" })),
  };
}
