/**
 * The resource routes under `/v1/resources`: put (one or a list, validated whole before
 * anything is written), list, get, delete, and each resource's revision history and rollback.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { controlCharPath, resourceName, WritableResourceSchema } from "../../config/mod.ts";
import { MAX_RESOURCES_PER_COMMAND, type StoredResource } from "../registry/mod.ts";
import type { ApiCore } from "./api_core.ts";
import type { ApiEnv } from "./api_env.ts";
import { ApiError, validationError } from "./errors.ts";
import {
  kindParam,
  nameParam,
  parseQuery,
  ResourcesQuery,
  StaleQuery,
  validateBody,
} from "./params.ts";

const _RollbackBody = z.strictObject({ revision: z.number().int().min(1) });

/** Validates a `PUT /v1/resources` body (one resource or a list) into stored resources. */
export function parseResourceBody(value: unknown): StoredResource[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) {
    throw new ApiError(400, "invalid_request", "body: expected at least one resource");
  }
  if (list.length > MAX_RESOURCES_PER_COMMAND) {
    throw new ApiError(
      400,
      "too_many_resources",
      `body: ${list.length} resources, more than the limit of ${MAX_RESOURCES_PER_COMMAND} per request`,
      { limit: MAX_RESOURCES_PER_COMMAND },
    );
  }
  const out: StoredResource[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const raw = list[i];
    const prefix = Array.isArray(value) ? [i] : [];
    const bad = controlCharPath(raw);
    if (bad !== null) {
      throw new ApiError(
        400,
        "invalid_request",
        `body${prefix.length ? `[${i}]` : ""}.${bad}: must not contain control characters`,
      );
    }
    const r = WritableResourceSchema.safeParse(raw);
    if (!r.success) throw validationError("body", r.error.issues, prefix);
    const name = resourceName(r.data);
    const key = `${r.data.kind}/${name}`;
    if (seen.has(key)) {
      throw new ApiError(400, "duplicate_resource", `body: ${key} appears more than once`, {
        resource: key,
      });
    }
    seen.add(key);
    // Stored as sent (validated, not transformed): durations stay "2s", so what `get` returns
    // can be applied again, and consumers parse it with ResourceSchema themselves.
    out.push({ kind: r.data.kind, name, resource: raw as Record<string, unknown> });
  }
  return out;
}

/** The resource routes. */
export function resourceRoutes(k: ApiCore): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const { backend } = k;

  app.put("/v1/resources", async (c) => {
    const { bytes, value } = await k.body(c);
    const items = parseResourceBody(value);
    const r = await k.commit(c, bytes, { type: "put_resource", items });
    if (r instanceof Response) return r;
    if (r.value.type !== "put_resource") throw new Error("apply result does not match command");
    return c.json({ index: r.index, items: r.value.items });
  });

  app.get("/v1/resources", async (c) => {
    const q = parseQuery(c, ResourcesQuery);
    const kind = q.kind === undefined ? undefined : kindParam(q.kind);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    k.withIndex(c);
    return c.json({ index: backend.state().index, resources: backend.state().listResources(kind) });
  });

  app.get("/v1/resources/:kind/:name", async (c) => {
    const kind = kindParam(c.req.param("kind"));
    const name = nameParam("path.name", c.req.param("name"));
    const q = parseQuery(c, StaleQuery);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    const r = backend.state().getResource(kind, name);
    if (!r) throw new ApiError(404, "not_found", `no resource ${kind}/${name}`, { kind, name });
    k.withIndex(c);
    return c.json(r);
  });

  app.delete("/v1/resources/:kind/:name", async (c) => {
    const kind = kindParam(c.req.param("kind"));
    const name = nameParam("path.name", c.req.param("name"));
    const r = await k.commit(c, null, { type: "delete_resource", kind, name });
    if (r instanceof Response) return r;
    if (r.value.type !== "delete_resource") throw new Error("apply result does not match command");
    return c.json({ index: r.index, kind, name, revision: r.value.revision });
  });

  app.get("/v1/resources/:kind/:name/history", async (c) => {
    const kind = kindParam(c.req.param("kind"));
    const name = nameParam("path.name", c.req.param("name"));
    const q = parseQuery(c, StaleQuery);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    const h = backend.state().history(kind, name);
    if (!h) throw new ApiError(404, "not_found", `no resource ${kind}/${name}`, { kind, name });
    k.withIndex(c);
    return c.json({ kind, name, revisions: h });
  });

  app.post("/v1/resources/:kind/:name/rollback", async (c) => {
    const kind = kindParam(c.req.param("kind"));
    const name = nameParam("path.name", c.req.param("name"));
    const { bytes, value } = await k.body(c);
    const { revision } = validateBody(_RollbackBody, value);
    const r = await k.commit(c, bytes, { type: "rollback_resource", kind, name, revision });
    if (r instanceof Response) return r;
    if (r.value.type !== "rollback_resource") {
      throw new Error("apply result does not match command");
    }
    return c.json({
      index: r.index,
      kind,
      name,
      outcome: r.value.outcome,
      revision: r.value.revision,
      from_revision: revision,
    });
  });

  return app;
}
