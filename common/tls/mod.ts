/**
 * TLS that the control plane and the mesh share: SPIFFE identities (`spiffe.ts`), PEM, keys and
 * trust bundles (`pem.ts`), the mutual-TLS server (`mtls_server.ts`) and client
 * (`mtls_client.ts`), all on `node:tls`.
 *
 * Not re-exported here, so that a module needing identities does not load them: the raw
 * `node:tls` handle reads (`raw_handle.ts`, `socket_io.ts`) that the two connection wrappers
 * (`mesh/forward/tls_conn.ts`, `control/transport/tls_stream.ts`) import directly, and the
 * HTTPS client of the control API (`control_https.ts`). TLS that only the proxies use lives in
 * `mesh/tls/`, TLS that only control nodes use in `control/tls/`.
 * @module
 */
export * from "./spiffe.ts";
export * from "./pem.ts";
export * from "./chain.ts";
export * from "./mtls_server.ts";
export * from "./mtls_client.ts";
export * from "./distrust.ts";
