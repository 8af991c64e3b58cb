/**
 * The control node runtime: the driver that joins Raft, the WAL, the peer transport, the
 * registry and the API into one process.
 * @module
 */
export * from "./bootstrap.ts";
export * from "./control_node.ts";
export * from "./driver.ts";
export * from "./durable_log.ts";
export * from "./envelope.ts";
export * from "./membership.ts";
export * from "./options.ts";
export * from "./ports.ts";
export * from "./transport_net.ts";
export * from "./waiters.ts";
export * from "./write_relay.ts";
