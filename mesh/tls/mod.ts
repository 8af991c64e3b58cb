/**
 * Mutual TLS on the proxy-to-proxy hop: the per-thread TLS state, the inbound mTLS listener
 * and the outbound mTLS dialer. The mesh's certificate handling below this (the `node:tls`
 * server and client, SPIFFE ids, PEM) is shared with the control plane and lives in
 * `common/tls.ts`; the connection wrappers the forwarder reads are in `mesh/forward/tls_conn.ts`.
 * @module
 */
export * from "./mesh_tls.ts";
