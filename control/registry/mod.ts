/**
 * The control registry: the replicated state machine (services, instances, resources with
 * history), its Raft commands, heartbeat leases and blocking-query watches. Pure apart from
 * the timers of {@linkcode IndexWatcher}; the driver feeds it committed entries. The state also
 * holds the replicated CA (private keys included: never serve `ca()`), join token records and
 * operator token hashes.
 * @module
 */
export * from "./instance.ts";
export * from "./budget.ts";
export * from "./commands.ts";
export * from "./state.ts";
export * from "./snapshot_encode.ts";
export * from "./leases.ts";
export * from "./watch.ts";
