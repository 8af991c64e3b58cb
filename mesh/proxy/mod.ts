/**
 * The `skein proxy` process: upstream, `http_proxy`, inbound and admin listeners around the
 * byte-level forwarder (`mesh/forward/`) and TCP proxy (`mesh/tcp/`), with a catalog-driven
 * router that applies `Policy` and `Route` resources (balancing, timeouts, retries with a
 * budget, circuit breaking, outlier detection, version subsets) and discovery
 * (`mesh/discovery/`) that registers, heartbeats and watches the catalog.
 *
 * With `workers: N > 1` the data plane runs on N worker threads sharing the ports with
 * `SO_REUSEPORT`; the main thread keeps discovery and admin (see `docs/proxy.md`).
 * With an identity (`tls`), the proxy-to-proxy hop is mutual TLS (`mesh_tls.ts`).
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
export * from "./workers.ts";
export type * from "./worker_protocol.ts";
