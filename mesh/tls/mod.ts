/**
 * Mutual TLS on the proxy-to-proxy hop: the per-thread TLS state (`state.ts`), the inbound mTLS
 * listener (`listen.ts`) and the outbound mTLS dialer (`connect.ts`). The certificate handling
 * below this (the `node:tls` server and client, SPIFFE ids, PEM) is shared with the control
 * plane and lives in `common/tls/mod.ts`; the connection wrappers the forwarder reads are in
 * `mesh/forward/tls_conn.ts`.
 * @module
 */
export * from "./state.ts";
export * from "./listen.ts";
export * from "./connect.ts";
