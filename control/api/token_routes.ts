/**
 * The credential routes: join tokens (`/v1/tokens`, a service's one-time enrolment secret)
 * and operator tokens (`/v1/operator-tokens`). A secret is shown once, when created; the
 * cluster keeps only its hash and lists records without it.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { parseDuration } from "../../config/mod.ts";
import { NameSchema } from "../registry/mod.ts";
import {
  createJoinToken,
  createOperatorToken,
  JOIN_TOKEN_USES_MAX,
  publicJoinToken,
  publicOperatorToken,
  ROLES,
} from "../auth/mod.ts";
import type { ApiCore } from "./api_core.ts";
import type { ApiEnv } from "./api_env.ts";
import { ApiError } from "./errors.ts";
import { parseQuery, StaleQuery, validateBody } from "./params.ts";

const _TokenBody = z.strictObject({
  /** The service the token enrols; or, instead, `gateway`. */
  service: NameSchema.optional(),
  /** The ingress gateway the token enrols (`spiffe://<td>/gateway/<name>`). */
  gateway: NameSchema.optional(),
  ttl: z.string().max(32).default("1h"),
  uses: z.number().int().min(1).max(JOIN_TOKEN_USES_MAX).default(1),
});
const _OperatorTokenBody = z.strictObject({
  role: z.enum(ROLES),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/).default("operator"),
  ttl: z.string().max(32).optional(),
});
/** Join-token and operator-token routes. */
export function tokenRoutes(k: ApiCore): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const { backend, log, clock } = k;

  app.post("/v1/tokens", async (c) => {
    const { bytes, value } = await k.body(c);
    const req = validateBody(_TokenBody, value);
    const name = req.service ?? req.gateway;
    if (name === undefined || (req.service !== undefined && req.gateway !== undefined)) {
      throw new ApiError(
        400,
        "invalid_request",
        "body: expected exactly one of service or gateway",
      );
    }
    const ttlMs = parseDuration(req.ttl);
    if (ttlMs === null) {
      throw new ApiError(
        400,
        "invalid_request",
        `body.ttl: expected a duration like "1h", got ${JSON.stringify(req.ttl)}`,
      );
    }
    let made;
    try {
      made = createJoinToken({
        service: name,
        gateway: req.gateway !== undefined,
        ttlMs,
        uses: req.uses,
        now: clock(),
      });
    } catch (e) {
      throw new ApiError(400, "invalid_request", `body: ${(e as Error).message}`);
    }
    const r = await k.commit(c, bytes, { type: "create_join_token", record: made.record });
    if (r instanceof Response) return r;
    // The secret is shown once, here; the cluster keeps only its hash.
    return c.json({
      token: made.secret,
      id: made.record.id,
      ...(made.record.kind === "gateway"
        ? { gateway: made.record.service }
        : { service: made.record.service }),
      uses: made.record.uses,
      expires_at: new Date(made.record.expiresAt).toISOString(),
      index: r.index,
    }, 201);
  });

  app.get("/v1/tokens", async (c) => {
    const q = parseQuery(c, StaleQuery);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    return c.json({ tokens: backend.state().joinTokens().map(publicJoinToken) });
  });

  app.post("/v1/operator-tokens", async (c) => {
    const { bytes, value } = await k.body(c);
    const req = validateBody(_OperatorTokenBody, value);
    let ttlMs: number | undefined;
    if (req.ttl !== undefined) {
      const ms = parseDuration(req.ttl);
      if (ms === null || ms < 1) {
        throw new ApiError(
          400,
          "invalid_request",
          `body.ttl: expected a duration like "24h", got ${JSON.stringify(req.ttl)}`,
        );
      }
      ttlMs = ms;
    }
    const made = createOperatorToken({ name: req.name, role: req.role, ttlMs, now: clock() });
    const r = await k.commit(c, bytes, { type: "put_operator_token", record: made.record });
    if (r instanceof Response) return r;
    log.info("operator token created", { credential_id: made.record.id, role: made.record.role });
    // The secret is shown once, here; the cluster keeps only its hash.
    return c.json({
      token: made.secret,
      id: made.record.id,
      name: made.record.name,
      role: made.record.role,
      expires_at: made.record.expiresAt === null
        ? null
        : new Date(made.record.expiresAt).toISOString(),
      index: r.index,
    }, 201);
  });

  app.get("/v1/operator-tokens", async (c) => {
    const q = parseQuery(c, StaleQuery);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    return c.json({ tokens: backend.state().operatorTokens().map(publicOperatorToken) });
  });

  app.delete("/v1/operator-tokens/:id", async (c) => {
    const id = c.req.param("id");
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      throw new ApiError(400, "invalid_request", `path.id: not a token id: ${JSON.stringify(id)}`);
    }
    const r = await k.commit(c, null, { type: "revoke_operator_token", id });
    if (r instanceof Response) return r;
    log.info("operator token revoked", { credential_id: id });
    return c.json({ index: r.index, revoked: id });
  });

  return app;
}
