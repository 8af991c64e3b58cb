/**
 * The cluster routes: `GET /v1/health` (this node's role, indexes and clock) and the Raft
 * membership under `/v1/members`, whose changes run on the leader within the write timeout.
 * @module
 */
import { Hono } from "hono";
import { z } from "zod";
import { NameSchema } from "../registry/mod.ts";
import type { ApiCore } from "./api_core.ts";
import type { ApiEnv } from "./api_env.ts";
import type { Member } from "./backend.ts";
import { ApiError } from "./errors.ts";
import { nameParam, parseQuery, StaleQuery, validateBody } from "./params.ts";

const _MemberBody = z.strictObject({
  node: NameSchema,
  address: z.string().regex(/^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$/, 'expected "host:port"'),
  // Followers forward callers' tokens to this address: never in clear.
  api: z.url().max(256).refine((u) => u.startsWith("https://"), {
    message: "expected an https:// URL",
  }).nullable().optional(),
  voter: z.boolean().optional(),
});

/** Health and membership routes; `version` is shown in `/v1/health` for skew checks. */
export function clusterRoutes(k: ApiCore, version: string | undefined): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const { backend, clock } = k;

  // `time` (this node's clock, ms) lets `skein ctl check` see clock skew between nodes.
  app.get("/v1/health", (c) =>
    c.json({
      ...backend.health(),
      time: clock(),
      ...(version ? { version: version } : {}),
    }));

  app.get("/v1/members", (c) => {
    parseQuery(c, StaleQuery);
    return c.json({ members: backend.members() });
  });

  app.post("/v1/members", async (c) => {
    const { bytes, value } = await k.body(c);
    const m: Member = validateBody(_MemberBody, value);
    const r = await k.membership(c, (s) => backend.addMember(m, s), bytes);
    return r.forwarded ?? c.json({ member: m }, 201);
  });

  app.delete("/v1/members/:node", async (c) => {
    const node = nameParam("path.node", c.req.param("node"));
    // Only the leader's member list is authoritative; a follower forwards without judging.
    if (backend.isLeader() && !backend.members().some((m) => m.node === node)) {
      throw new ApiError(404, "not_found", `no member ${node}`, { node });
    }
    const r = await k.membership(c, (s) => backend.removeMember(node, s), null);
    return r.forwarded ?? c.json({ removed: node });
  });

  return app;
}
