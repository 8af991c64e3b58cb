/**
 * The ingress gateway's listeners (proxy.yaml `ingress:`): plain or TLS listeners for clients
 * outside the mesh (`listen.ts`, `tls_listen.ts`, certificates read from files and reloaded
 * when they change in `cert_store.ts`, picked by SNI in `sni.ts`), per-address connection caps
 * (`address_cap.ts`) and the choice of a mesh service by host and path (`routes.ts`,
 * `decide.ts`). Behind the listener a request takes the ordinary outbound path
 * (`mesh/forward/request_path.ts`): Route, retries, limits, tracing and the access log apply.
 * @module
 */
export * from "./address_cap.ts";
export * from "./cert_store.ts";
export * from "./decide.ts";
export * from "./listen.ts";
export * from "./routes.ts";
export * from "./sni.ts";
export * from "./tls_listen.ts";
export * from "./metrics.ts";
