/**
 * The service routes: instances registered, read and deregistered under `/v1/services`, the
 * proxies' heartbeats (`PUT /v1/heartbeat`, which also carry their trust and dashboard
 * reports) and the leader's list of proxy reports (`GET /v1/proxies`). Proxy writes are
 * rate-limited per identity.
 * @module
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import {
  HealthSchema,
  MAX_INSTANCES_PER_PROXY_IDENTITY,
  NameSchema,
  type Registration,
  RegistrationSchema,
  type ValidatedCommand,
} from "../registry/mod.ts";
import type { DashboardWindow } from "../dashboard/window.ts";
import { HeartbeatStatsSchema } from "../dashboard/stats_schema.ts";
import { requireOwnService } from "./access.ts";
import type { ApiCore } from "./api_core.ts";
import type { ApiEnv } from "./api_env.ts";
import { type ControlBackend, NotLeaderError } from "./backend.ts";
import { ApiError } from "./errors.ts";
import { InstancesQuery, nameParam, parseQuery, StaleQuery, validateBody } from "./params.ts";
import { ProxyReports, ProxyReportSchema } from "./proxy_reports.ts";
import { WriteRate } from "./write_rate.ts";

/** Most instances in one heartbeat batch. */
export const MAX_HEARTBEAT_ITEMS = 1_000;
/**
 * Largest registration body. A real one is well under 2 KiB; the schema's own bounds (64 tags,
 * capabilities and meta entries of 256 characters) would allow hundreds of KiB per instance,
 * copied into every node, the log and every proxy's catalog.
 */
export const MAX_REGISTRATION_BODY_BYTES = 32 * 1024;

/** A certificate fingerprint as `X509Certificate.fingerprint256` writes it. */
const _Fingerprint = z.string().regex(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
const _HeartbeatBody = z.strictObject({
  instances: z.array(z.strictObject({
    service: NameSchema,
    id: NameSchema,
    health: HealthSchema.optional(),
  })).min(1).max(MAX_HEARTBEAT_ITEMS),
  /** What the proxy says about itself, for `skein ctl check`. */
  proxy: ProxyReportSchema.optional(),
  // What the proxy holds, so a CA rotation knows when every proxy trusts the new root and
  // when every leaf comes from it.
  trust: z.strictObject({
    roots: z.array(_Fingerprint).max(8),
    leaf_root: _Fingerprint.nullable(),
    leaf_issuer: _Fingerprint.nullable().optional(),
  }).optional(),
  /** The dashboard report; checked on its own, so a bad one never fails the heartbeat. */
  stats: z.unknown().optional(),
});

/**
 * The `register_instance` command for a validated registration body and validated path names;
 * equal to what {@linkcode RegistryCommandSchema} would output for it.
 */
export function registerCommand(
  reg: Registration,
  service: string,
  id: string,
  identityQuota?: number,
): ValidatedCommand {
  const { id: _id, service: _service, ...fields } = reg;
  // Same key order as the schema's output (id, service, fields), so every node stores alike.
  const instance = { id, service, ...fields };
  return (identityQuota === undefined
    ? { type: "register_instance", instance }
    : { type: "register_instance", instance, identity_quota: identityQuota }) as ValidatedCommand;
}

/** Instance, heartbeat and proxy-report routes; `dashboard` keeps the heartbeats' stats when given. */
export function serviceRoutes(k: ApiCore, dashboard: DashboardWindow | undefined): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const { backend, log, clock } = k;
  const proxyReports = new ProxyReports();
  /** Registry writes of proxy identities, rate-limited per identity. */
  const proxyWrites = new WriteRate();
  k.metrics.proxyWrites = proxyWrites;

  app.get("/v1/services", async (c) => {
    const q = parseQuery(c, StaleQuery);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    k.withIndex(c);
    return c.json({ index: backend.state().index, services: backend.state().listServices() });
  });

  app.get("/v1/services/:name", async (c) => {
    const name = nameParam("path.name", c.req.param("name"));
    const q = parseQuery(c, InstancesQuery);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    k.withIndex(c);
    const st = backend.state();
    return c.json({
      service: name,
      index: st.index,
      instances: st.instances(name, { healthy: q.healthy, zone: q.zone, capability: q.capability }),
    });
  });

  app.get("/v1/services/:name/instances/:id", async (c) => {
    const name = nameParam("path.name", c.req.param("name"));
    const id = nameParam("path.id", c.req.param("id"));
    const q = parseQuery(c, StaleQuery);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    const inst = backend.state().instance(name, id);
    if (!inst) {
      throw new ApiError(404, "not_found", `no instance ${id} of service ${name}`, {
        service: name,
        id,
      });
    }
    k.withIndex(c);
    return c.json({ index: backend.state().index, instance: inst });
  });

  app.put("/v1/services/:name/instances/:id", async (c) => {
    const name = nameParam("path.name", c.req.param("name"));
    const id = nameParam("path.id", c.req.param("id"));
    const { bytes, value } = await k.body(c, MAX_REGISTRATION_BODY_BYTES);
    requireOwnService(c, name, "register");
    const reg = validateBody(RegistrationSchema, value);
    if (reg.service !== undefined && reg.service !== name) {
      throw new ApiError(
        400,
        "invalid_request",
        `body.service: ${reg.service} does not match the path's ${name}`,
      );
    }
    if (reg.id !== undefined && reg.id !== id) {
      throw new ApiError(
        400,
        "invalid_request",
        `body.id: ${reg.id} does not match the path's ${id}`,
      );
    }
    // Valid by construction: RegistrationSchema's output has exactly the instance fields with
    // their defaults, and service and id passed NameSchema, so the command schema is skipped
    // on this hottest route (a test pins the equivalence).
    // A proxy certificate registers the few instances it fronts: its writes carry a quota.
    limitProxyWrites(c);
    const quota = c.get("principal").kind === "proxy"
      ? MAX_INSTANCES_PER_PROXY_IDENTITY
      : undefined;
    const r = await k.commit(c, bytes, {
      validated: registerCommand(reg, name, id, quota),
    });
    if (r instanceof Response) return r;
    if (r.value.type !== "register_instance") {
      throw new Error("apply result does not match command");
    }
    return c.json(
      {
        index: r.index,
        created: r.value.created,
        changed: r.value.changed,
        instance: r.value.instance,
      },
      r.value.created ? 201 : 200,
    );
  });

  app.delete("/v1/services/:name/instances/:id", async (c) => {
    const name = nameParam("path.name", c.req.param("name"));
    const id = nameParam("path.id", c.req.param("id"));
    requireOwnService(c, name, "deregister");
    limitProxyWrites(c);
    const r = await k.commit(c, null, { type: "deregister_instance", service: name, id });
    if (r instanceof Response) return r;
    if (r.value.type !== "deregister_instance") {
      throw new Error("apply result does not match command");
    }
    return c.json({ index: r.index, instance: r.value.instance });
  });

  app.put("/v1/heartbeat", async (c) => {
    const { bytes, value } = await k.body(c);
    const hb = validateBody(_HeartbeatBody, value);
    for (const i of hb.instances) requireOwnService(c, i.service, "heartbeat");
    if (hb.stats !== undefined && dashboard !== undefined) {
      // Kept by the node that hears it (a follower too), not replicated: it is a live view.
      const stats = HeartbeatStatsSchema.safeParse(hb.stats);
      if (!stats.success) {
        log.debug("dashboard report refused", { err: stats.error.issues[0]?.message });
      } else if (!reportsOwnNode(backend, hb.instances, stats.data.node)) {
        // A proxy speaks for its own node only (the node its instances registered with).
        log.debug("dashboard report refused", { err: "node does not match the instances" });
      } else dashboard.record(stats.data, clock());
    }
    if (!backend.isLeader()) return await k.forward(c, bytes);
    // Only registered instances get a lease: heartbeats for made-up ids would fill the lease
    // table, and an instance with no lease would never be marked critical.
    const st = backend.state();
    const known = hb.instances.filter((i) => st.instance(i.service, i.id));
    try {
      backend.heartbeat(known);
    } catch (e) {
      if (e instanceof NotLeaderError) return await k.forward(c, bytes);
      throw e;
    }
    // Only for registered instances: a made-up report would sit in the list for a day.
    if (hb.proxy && known.length > 0) {
      proxyReports.record(hb.proxy, known.map((i) => i.service), clock());
    }
    if (hb.trust !== undefined && known.length > 0) {
      backend.reportTrust?.(known, {
        roots: hb.trust.roots,
        leafRoot: hb.trust.leaf_root,
        ...(hb.trust.leaf_issuer !== undefined ? { leafIssuer: hb.trust.leaf_issuer } : {}),
      });
    }
    const unknown = hb.instances
      .filter((i) => !st.instance(i.service, i.id))
      .map((i) => ({ service: i.service, id: i.id }));
    return c.json({ accepted: known.length, unknown });
  });

  // The leader takes the heartbeats, so it holds the reports; others ask it.
  app.get("/v1/proxies", async (c) => {
    if (!backend.isLeader()) return await k.forward(c, null);
    return c.json({ now: clock(), proxies: proxyReports.list(clock()) });
  });

  /** Refuses a proxy's write over its rate with 429 `too_many_writes` and `Retry-After`. */
  function limitProxyWrites(c: Context<ApiEnv>): void {
    const peer = c.get("peer");
    if (c.get("principal").kind !== "proxy" || !peer) return;
    const now = clock();
    if (proxyWrites.take(peer.uri, now)) return;
    const retryMs = proxyWrites.retryAfterMs(peer.uri, now);
    c.header("retry-after", String(Math.max(1, Math.ceil(retryMs / 1000))));
    throw new ApiError(
      429,
      "too_many_writes",
      `${peer.uri} registers or deregisters more than ${proxyWrites.perSecond} times a second`,
      { limit: proxyWrites.perSecond, retry_after_ms: retryMs },
    );
  }

  return app;
}

/** Whether the instances of a heartbeat that are registered all live on `node`. */
function reportsOwnNode(
  backend: ControlBackend,
  instances: readonly { service: string; id: string }[],
  node: string,
): boolean {
  const st = backend.state();
  return instances.every((i) => {
    const known = st.instance(i.service, i.id);
    return known === undefined || known.node === node;
  });
}
