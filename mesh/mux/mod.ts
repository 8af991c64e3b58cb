/**
 * skein-mux/1: many request streams over one mutual-TLS connection between two skein proxies,
 * negotiated by ALPN, so the mesh hop writes one TLS record per batch of calls instead of one
 * per call. See `session.ts` for the design and `frame.ts` for the wire format.
 * @module
 */
export * from "./frame.ts";
export * from "./session.ts";
export * from "./connector.ts";
