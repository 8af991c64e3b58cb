/**
 * The control HTTP API (SPEC section 2) as a Hono app over a {@linkcode ControlBackend}: the
 * middleware every request passes (tracing, request counts, access), one error handler, and
 * one sub-app per resource group, each in its own `*_routes.ts` module.
 *
 * Writes go through Raft on the leader; a follower forwards them. Reads are linearizable unless
 * `?stale=true`. Every wait is bounded: writes and read barriers by `writeTimeoutMs`, forwarding
 * by `forwardTimeoutMs`, blocking queries by `maxWaitMs` (see `api_core.ts`).
 * @module
 */
import { Hono } from "hono";
import { nullLogger } from "../../common/mod.ts";
import { LEAF_TTL_MS_DEFAULT } from "../ca/mod.ts";
import { dashboardRoutes } from "../dashboard/routes.ts";
import { checkAccess } from "./access.ts";
import { ApiCore } from "./api_core.ts";
import {
  type ApiEnv,
  type ApiLimits,
  type ApiOptions,
  FORWARD_TIMEOUT_MS,
  MAX_BLOCKING_WAIT_MS,
  MAX_STALE_MS,
  READ_TIMEOUT_MS,
  WRITE_TIMEOUT_MS,
} from "./api_env.ts";
import type { ControlBackend } from "./backend.ts";
import { MAX_BODY_BYTES } from "./body.ts";
import { caRoutes } from "./ca_routes.ts";
import { CatalogFeed } from "./catalog_feed.ts";
import { catalogRoutes } from "./catalog_routes.ts";
import { CatalogWatchPath } from "./catalog_watch_path.ts";
import { clusterRoutes } from "./cluster_routes.ts";
import { apiErrorHandler, apiNotFound } from "./error_handler.ts";
import { ApiMetrics, countRequests, renderControlMetrics } from "./metrics.ts";
import { resourceRoutes } from "./resource_routes.ts";
import { serviceRoutes } from "./service_routes.ts";
import { tokenRoutes } from "./token_routes.ts";
import { traceApiCalls } from "./tracing.ts";

export * from "./api_env.ts";
export { MAX_SIGN_BODY_BYTES } from "./ca_routes.ts";
export { MAX_WATCHERS_PER_ADDRESS } from "./catalog_routes.ts";
export { parseResourceBody } from "./resource_routes.ts";
export {
  MAX_HEARTBEAT_ITEMS,
  MAX_REGISTRATION_BODY_BYTES,
  registerCommand,
} from "./service_routes.ts";

/** Creates the control API app. */
export function createApi(backend: ControlBackend, opts: ApiOptions = {}): Hono<ApiEnv> {
  const { app, watchPath } = createControlApi(backend, opts);
  // Without the HTTPS server's intercept nothing reaches the watch path: stop its listener.
  watchPath.close();
  return app;
}

/**
 * The control API app and the lean path of proxies' catalog watches over the same feed and
 * limits, for `serveApiHttps({ handler: app.fetch, intercept: watchPath.intercept })`.
 */
export function createControlApi(
  backend: ControlBackend,
  opts: ApiOptions = {},
): { app: Hono<ApiEnv>; watchPath: CatalogWatchPath } {
  const log = opts.logger ?? nullLogger;
  const limits: ApiLimits = opts.limits ?? {
    maxBodyBytes: opts.maxBodyBytes ?? MAX_BODY_BYTES,
    writeTimeoutMs: opts.writeTimeoutMs ?? WRITE_TIMEOUT_MS,
    readTimeoutMs: opts.readTimeoutMs ?? READ_TIMEOUT_MS,
    maxStaleMs: opts.maxStaleMs ?? MAX_STALE_MS,
  };
  const metrics = opts.metrics ?? new ApiMetrics();
  const clock = opts.now ?? Date.now;
  const core = new ApiCore(backend, {
    log,
    limits,
    metrics,
    clock,
    forwardTimeoutMs: opts.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS,
    fetch: opts.fetch ?? ((req: Request) => fetch(req)),
  });
  const catalogFeed = new CatalogFeed();
  const maxWaitMs = opts.maxWaitMs ?? MAX_BLOCKING_WAIT_MS;
  const watchPath = new CatalogWatchPath({
    backend,
    feed: catalogFeed,
    stale: core.stale,
    metrics,
    maxWaitMs,
    ...(opts.authorize !== undefined ? { authorize: opts.authorize } : {}),
    ...(opts.tracing !== undefined ? { tracing: opts.tracing } : {}),
  });

  const app = new Hono<ApiEnv>();
  if (opts.tracing !== undefined) app.use("*", traceApiCalls(opts.tracing));
  app.use("*", countRequests(metrics));
  app.use("*", checkAccess(backend, log, opts.authorize));
  app.onError(apiErrorHandler(log));
  app.notFound(apiNotFound);

  app.route("/", clusterRoutes(core, opts.version));
  app.route("/", serviceRoutes(core, opts.dashboard));
  app.route("/", catalogRoutes(core, catalogFeed, maxWaitMs));
  app.route("/", resourceRoutes(core));
  app.route("/", caRoutes(core, opts.leafTtlMs ?? LEAF_TTL_MS_DEFAULT));
  app.route("/", tokenRoutes(core));
  if (opts.dashboard !== undefined) {
    app.route("/", dashboardRoutes({ backend, window: opts.dashboard, now: clock }));
  }
  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(renderControlMetrics(backend, metrics, catalogFeed.stats));
  });
  return { app, watchPath };
}
