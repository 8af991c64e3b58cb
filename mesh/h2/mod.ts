/**
 * HTTP/2 and gRPC through the proxy: h2c with prior knowledge from apps (handed over by the
 * HTTP/1 forwarder when it sees the preface), h2 between proxies over mTLS (ALPN `h2`), h2c to
 * local apps declared `protocol: http2` or `grpc`. Each stream is one request through the
 * same router and decision as HTTP/1 (`call.ts`). Framing and HPACK are skein's own
 * (`wire/`), loaded only when the first h2 connection arrives (`lazy.ts`): import this module
 * only from there.
 * @module
 */
export * from "./grpc.ts";
export * from "./headers.ts";
export * from "./call.ts";
export * from "./client_sessions.ts";
export * from "./gateway.ts";
