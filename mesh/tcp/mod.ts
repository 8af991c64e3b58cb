/**
 * Opaque TCP: proxying with an endpoint chosen per connection, byte counters and half-close
 * (`tcp_proxy.ts`), and TCP tunnelled between proxies over the mesh's mTLS inbound port
 * (`tunnel.ts`).
 * @module
 */
export * from "./tcp_proxy.ts";
export * from "./tunnel.ts";
