/**
 * What proxies report about themselves with their heartbeats (their skein version, when their
 * certificate expires, which settings they accept but do not enforce), kept in memory by the
 * node that takes heartbeats (the leader) for `skein ctl check`. Like leases these are not
 * Raft writes: a new leader learns them again within one heartbeat interval.
 * @module
 */
import { z } from "zod";
import { NameSchema } from "../registry/instance.ts";

/** Most settings one proxy can report as unenforced. */
export const MAX_UNENFORCED_REPORTED = 32;
/** Most proxies remembered; the one heard from longest ago makes room. */
export const MAX_PROXY_REPORTS = 10_000;
/** A proxy not heard from for this long is forgotten (it was removed, or renamed). */
export const PROXY_REPORT_TTL_MS = 24 * 3600 * 1000;

/** The `proxy` part of a heartbeat body. */
export const ProxyReportSchema = z.strictObject({
  node: NameSchema,
  version: z.string().min(1).max(64),
  /** When the certificate the proxy serves with expires, in ms since the epoch. */
  cert_not_after: z.number().int().min(0).max(8_640_000_000_000_000).nullable(),
  unenforced: z.array(z.string().min(1).max(256)).max(MAX_UNENFORCED_REPORTED).default([]),
});
/** A proxy's report as sent. */
export type ProxyReport = z.infer<typeof ProxyReportSchema>;

/** A report as `GET /v1/proxies` returns it. */
export interface ProxyReportEntry extends ProxyReport {
  /** The services it heartbeats for. */
  services: string[];
  /** When this node last heard from it, ms since the epoch (this node's clock). */
  last_heartbeat: number;
}

/** The reports this node has received, bounded in count and age. */
export class ProxyReports {
  #byNode = new Map<string, ProxyReportEntry>();

  /** Records `report` heard now from a proxy heartbeating for `services`. */
  record(report: ProxyReport, services: readonly string[], now: number): void {
    this.#byNode.delete(report.node);
    if (this.#byNode.size >= MAX_PROXY_REPORTS) {
      const oldest = this.#byNode.keys().next().value;
      if (oldest !== undefined) this.#byNode.delete(oldest);
    }
    this.#byNode.set(report.node, {
      ...report,
      services: [...new Set(services)].sort(),
      last_heartbeat: now,
    });
  }

  /** The reports younger than {@linkcode PROXY_REPORT_TTL_MS}, by node name. */
  list(now: number): ProxyReportEntry[] {
    for (const [node, e] of this.#byNode) {
      if (now - e.last_heartbeat > PROXY_REPORT_TTL_MS) this.#byNode.delete(node);
    }
    return [...this.#byNode.values()].sort((a, b) => (a.node < b.node ? -1 : 1));
  }
}
