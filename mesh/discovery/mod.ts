/**
 * Service discovery for the proxy: a failover client for the control API, registration and
 * heartbeats of the local instances (with their active health checks), a blocking-query
 * watch of the catalog, and the on-disk cache of the last-known catalog.
 *
 * `mesh/` never imports `control/`: the response shapes read here are defined with zod in
 * `catalog.ts`.
 * @module
 */
export * from "./catalog.ts";
export * from "./cache.ts";
export * from "./control_client.ts";
export * from "./discovery.ts";
export * from "./delta.ts";
