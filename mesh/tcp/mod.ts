/**
 * Opaque TCP proxying with an endpoint chosen per connection, byte counters and half-close.
 * @module
 */
export * from "./tcp_proxy.ts";
