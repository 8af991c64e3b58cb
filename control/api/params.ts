/**
 * Reading a request's query string, body and path parameters into validated values, each
 * refusal a 400 naming the field: the checks every route group shares.
 * @module
 */
import type { Context } from "hono";
import { z } from "zod";
import { didYouMean, RESOURCE_KINDS } from "../../config/mod.ts";
import { NameSchema } from "../registry/mod.ts";
import { ApiError, validationError } from "./errors.ts";

const _flag = z.enum(["true", "false", "1", "0", ""]).optional().transform((v) =>
  v === undefined ? undefined : v === "true" || v === "1" || v === ""
);
const _uint = z.string().regex(/^\d{1,15}$/, "expected a non-negative integer").transform(Number);

/** The query of a plain read: only `?stale`. */
export const StaleQuery = z.strictObject({ stale: _flag });
/** The query of `GET /v1/services/:name`. */
export const InstancesQuery = z.strictObject({
  stale: _flag,
  healthy: _flag,
  zone: z.string().max(128).optional(),
  capability: z.string().max(256).optional(),
});
/** The query of `GET /v1/catalog`, blocking when `index` is given. */
export const CatalogQuery = z.strictObject({
  stale: _flag,
  index: _uint.optional(),
  wait: z.string().max(32).optional(),
});
/** The query of `GET /v1/resources`. */
export const ResourcesQuery = z.strictObject({ stale: _flag, kind: z.string().max(64).optional() });

/** The request's query parsed by `schema` (first value of each key), or a 400. */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.req.queries())) raw[k] = v[0] ?? "";
  const r = schema.safeParse(raw);
  if (!r.success) throw validationError("query", r.error.issues);
  return r.data;
}

/** A parsed body checked by `schema`, or a 400 naming the fields. */
export function validateBody<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError("body", r.error.issues);
  return r.data;
}

/** Canonical spelling of a resource kind (case-insensitive), or a 400 with a suggestion. */
export function kindParam(raw: string): string {
  const k = RESOURCE_KINDS.find((x) => x.toLowerCase() === raw.toLowerCase());
  if (k) return k;
  const hint = didYouMean(raw, RESOURCE_KINDS);
  throw new ApiError(
    400,
    "unknown_kind",
    `unknown resource kind ${JSON.stringify(raw)}${hint ? `; did you mean ${hint}?` : ""}`,
    { kinds: [...RESOURCE_KINDS] },
  );
}

/** A path parameter that must be a registry name; `where` names it in the 400. */
export function nameParam(where: string, raw: string): string {
  const r = NameSchema.safeParse(raw);
  if (!r.success) throw validationError(where, r.error.issues);
  return r.data;
}
