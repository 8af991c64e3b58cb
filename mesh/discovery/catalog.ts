/**
 * The few control-plane response shapes the proxy reads, validated with zod because they are
 * outside bytes. Kept deliberately lenient about fields the proxy does not use, so a newer
 * control node that adds fields does not break older proxies.
 * @module
 */
import { z } from "zod";
// Not config/mod.ts: the barrel would load the YAML loader into every data-plane worker.
import { type Resource, ResourceSchema } from "../../config/resource_schema.ts";
import type { Logger } from "../../common/log.ts";
import { MAX_DISTRUSTED_INTERMEDIATES } from "../../common/tls/distrust.ts";

/** Health of an instance as the catalog records it. */
export const CatalogHealth = z.enum(["passing", "warning", "critical"]);

/** One service instance as `GET /v1/catalog` returns it. */
export const CatalogInstance = z.object({
  id: z.string().min(1).max(256),
  service: z.string().min(1).max(256),
  node: z.string().max(256).default(""),
  address: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65535),
  zone: z.string().max(256).default(""),
  version: z.string().max(256).default(""),
  weight: z.number().int().min(0).max(1_000_000).default(1),
  tags: z.array(z.string()).default([]),
  capabilities: z.array(z.string()).default([]),
  meta: z.record(z.string(), z.string()).default({}),
  health: CatalogHealth.default("passing"),
});
/** One service instance as `GET /v1/catalog` returns it. */
export type CatalogInstance = z.infer<typeof CatalogInstance>;

/** The body of `GET /v1/catalog`: everything a proxy needs, with its index. */
export const CatalogSchema = z.object({
  index: z.number().int().min(0),
  services: z.record(z.string(), z.array(CatalogInstance)),
  /** Resources as applied (durations still strings); parse with {@linkcode parseResources}. */
  resources: z.array(z.unknown()).default([]),
  /** CA roots to trust and SPIFFE ids to refuse (absent from control nodes without a CA). */
  trust: z.object({
    roots: z.array(z.string().max(16 * 1024)).max(8),
    revoked: z.array(z.string().max(2048)).max(10_000),
    /** Intermediates (PEM) whose leaves are refused though they chain to a root. */
    distrusted: z.array(z.string().max(16 * 1024)).max(MAX_DISTRUSTED_INTERMEDIATES).optional(),
  }).default({ roots: [], revoked: [] }),
});
/** The body of `GET /v1/catalog`. */
export type Catalog = z.infer<typeof CatalogSchema>;

/** An empty catalog, used before anything is known. */
export const EMPTY_CATALOG: Catalog = Object.freeze({
  index: 0,
  services: {},
  resources: [],
  trust: { roots: [], revoked: [] },
});

/** The body of `PUT /v1/heartbeat`'s answer. */
export const HeartbeatAnswer = z.object({
  accepted: z.number().int().min(0),
  unknown: z.array(z.object({ service: z.string(), id: z.string() })).default([]),
});
/** The body of `PUT /v1/heartbeat`'s answer. */
export type HeartbeatAnswer = z.infer<typeof HeartbeatAnswer>;

/** The catalog's resources as this proxy could read them. */
export interface ReadResources {
  /** The valid resources. */
  resources: Resource[];
  /**
   * Services named by an `Authorization` this proxy could not read (a field from a newer
   * version, say). Skipping one would leave its service open, so the inbound denies instead.
   */
  unreadableAuthorizations: string[];
}

/**
 * Validates the catalog's resources one by one. A resource this proxy cannot read (a kind it
 * does not know yet, say) is skipped with a warning instead of discarding the whole catalog;
 * an unreadable `Authorization` is also reported by service.
 */
export function readResources(raw: readonly unknown[], log: Logger): ReadResources {
  const out: ReadResources = { resources: [], unreadableAuthorizations: [] };
  for (const r of raw) {
    const p = ResourceSchema.safeParse(r);
    if (p.success) out.resources.push(p.data);
    else {
      const kind = (r as { kind?: unknown } | null)?.kind;
      const service = (r as { service?: unknown } | null)?.service;
      log.warn("ignoring a catalog resource this proxy cannot read", {
        kind: typeof kind === "string" ? kind : null,
        issue: p.error.issues[0]?.message,
      });
      if (kind === "Authorization" && typeof service === "string") {
        out.unreadableAuthorizations.push(service);
      }
    }
  }
  return out;
}

/**
 * A catalog with its resources read: what a data plane applies. The main thread reads them once
 * and hands the result to every data plane, so the workers neither parse the same resources
 * again nor load a schema library to do it.
 */
export interface PreparedCatalog extends ReadResources {
  catalog: Catalog;
}

/** Reads `c`'s resources (see {@linkcode readResources}) for the data planes. */
export function prepareCatalog(c: Catalog, log: Logger): PreparedCatalog {
  return { catalog: c, ...readResources(c.resources, log) };
}

/** The valid resources of {@linkcode readResources}. */
export function parseResources(raw: readonly unknown[], log: Logger): Resource[] {
  return readResources(raw, log).resources;
}
