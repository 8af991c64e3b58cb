/**
 * The `skein proxy` process: upstream, `http_proxy`, inbound and admin listeners around the
 * byte-level forwarder (`mesh/forward/`) and TCP proxy (`mesh/tcp/`), with a catalog-driven
 * router that applies `Policy` and `Route` resources (balancing, timeouts, retries with a
 * budget, circuit breaking, outlier detection, version subsets) and discovery
 * (`mesh/discovery/`) that registers, heartbeats and watches the catalog.
 *
 * What lives here, top to bottom: the assembly (`proxy.ts`, the admin listener `admin.ts`);
 * the data planes as the main thread sees them (`data_planes.ts`, in-process for
 * `workers: 1`); the worker threads (`workers.ts` on the main thread, `worker.ts` in each
 * worker, the messages between them in `worker_protocol.ts` and `plane_change.ts`); one thread's data
 * plane (`data_plane.ts`); the router (`router.ts`, with `inbound_rate_limit.ts` and
 * `capability.ts`); and the policy per destination (`destination.ts` and the modules it
 * composes). Features the proxy assembles from elsewhere: mTLS on the proxy-to-proxy hop
 * (`mesh/tls/`), Authorization (`mesh/authz/`), resilience state (`mesh/resilience/`),
 * metrics and records (`mesh/observe/`), the TCP tunnel (`mesh/tcp/`).
 *
 * With `workers: N > 1` the data plane runs on N worker threads sharing the ports with
 * `SO_REUSEPORT`; the main thread keeps discovery and admin (see `docs/proxy.md`).
 *
 * ```ts
 * const proxy = await MeshProxy.start({ config, logger });
 * // ... on SIGTERM:
 * await proxy.shutdown(); // stop accepting, drain, deregister
 * ```
 * @module
 */
export * from "./proxy.ts";
export * from "./router.ts";
export * from "./destination.ts";
export * from "./admin.ts";
export * from "./data_plane.ts";
export * from "./data_planes.ts";
export * from "./workers.ts";
export type * from "./worker_protocol.ts";
