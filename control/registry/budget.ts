/**
 * Write-time bounds on what the catalog may grow to: the byte budget of all instances together
 * and the per-identity quota of instances. Every proxy holds the whole catalog in memory, so
 * a caller with one proxy certificate must not be able to grow it without limit.
 * @module
 */
import type { Instance } from "./instance.ts";

/**
 * Budget of all instances in the catalog, in bytes of their JSON (approximately, see
 * {@linkcode instanceBytes}). Far below the 32 MiB a proxy reads of a catalog answer, leaving
 * room for resources and the trust bundle.
 */
export const MAX_CATALOG_INSTANCE_BYTES = 8 * 1024 * 1024;

/**
 * Most instances a proxy certificate may bring its service to. A proxy registers the few
 * instances it fronts; every proxy of a service shares its identity, so this also caps how
 * many proxies one service can have without an operator registering for them.
 */
export const MAX_INSTANCES_PER_PROXY_IDENTITY = 256;

/** Fixed part of an instance's JSON: key names, punctuation, numbers and the health value. */
const _FIXED_BYTES = 160;

/**
 * The size an instance adds to the catalog's JSON, counted in UTF-16 units of its strings plus
 * quoting; deterministic, so every control node refuses the same writes.
 */
export function instanceBytes(i: Instance): number {
  let n = _FIXED_BYTES + i.id.length + i.service.length + i.node.length + i.address.length +
    i.zone.length + i.version.length;
  for (const t of i.tags) n += t.length + 3;
  for (const c of i.capabilities) n += c.length + 3;
  for (const k in i.meta) n += k.length + i.meta[k]!.length + 6;
  return n;
}
