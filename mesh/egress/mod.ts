/**
 * Egress: calls from local apps to hosts outside the mesh, named by `ExternalService`
 * resources. The router (`mesh/proxy/egress_routes.ts`) makes each external service a
 * destination whose endpoints are its hosts; this folder holds what that needs below the
 * proxy: the table of external services (`external_table.ts`) and the dialer that originates
 * TLS to them (`origin_tls.ts`), which the connection pools use for endpoints marked `origin`.
 * @module
 */
export * from "./external_table.ts";
export * from "./origin_tls.ts";
