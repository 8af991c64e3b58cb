/**
 * The control node runtime: the driver that joins Raft, the WAL, the peer transport, the
 * registry and the API into one process.
 * @module
 */
export * from "./control_node.ts";
export * from "./durable_log.ts";
export * from "./envelope.ts";
export * from "./write_relay.ts";
