/**
 * Catalog deltas as the proxy receives them: the control node sends only the services,
 * resources and trust that changed since the index the proxy holds, and the proxy applies them
 * to its catalog. Pure; validated with zod because they are outside bytes.
 * @module
 */
import { z } from "zod";
import { type Catalog, CatalogInstance, CatalogSchema } from "./catalog.ts";

/** Header asking a control node for deltas; a node without them ignores it. */
export const CATALOG_DELTA_HEADER = "skein-catalog-delta";

/** The body of a delta answer to a blocking `GET /v1/catalog`. */
export const CatalogDeltaSchema = z.object({
  index: z.number().int().min(0),
  delta: z.object({
    from: z.number().int().min(0),
    services: z.record(z.string(), z.array(CatalogInstance)),
    removed: z.array(z.string().max(256)).max(100_000),
    resources: z.array(z.unknown()).optional(),
    trust: CatalogSchema.shape.trust.unwrap().optional(),
  }),
});
/** The body of a delta answer. */
export type CatalogDelta = z.infer<typeof CatalogDeltaSchema>;

/** Whether a catalog answer is a delta rather than a whole catalog. */
export function isDeltaAnswer(body: unknown): boolean {
  return typeof body === "object" && body !== null && "delta" in body;
}

/** A delta that does not start from the catalog the proxy holds. */
export class DeltaBaseError extends Error {
  override readonly name = "DeltaBaseError";
}

/**
 * The catalog `base` becomes with `d` applied. Refused unless `d` starts at `base`'s index and
 * moves forward, so a delta can never take the proxy back (nor undo a revocation).
 */
export function applyCatalogDelta(base: Catalog, d: CatalogDelta): Catalog {
  if (d.delta.from !== base.index) {
    throw new DeltaBaseError(`delta from index ${d.delta.from}, the proxy holds ${base.index}`);
  }
  if (d.index < base.index) {
    throw new DeltaBaseError(`delta to index ${d.index} goes back from ${base.index}`);
  }
  const services: Catalog["services"] = { ...base.services };
  for (const name of d.delta.removed) delete services[name];
  for (const [name, list] of Object.entries(d.delta.services)) services[name] = list;
  return {
    index: d.index,
    services,
    resources: d.delta.resources ?? base.resources,
    trust: d.delta.trust ?? base.trust,
  };
}
