/**
 * Durable storage for control nodes: a write-ahead log with group commit, an atomic
 * snapshot store, and the small file-system interface (with fault injection) under both.
 *
 * The layer is byte-level and knows nothing of Raft: the driver chooses record kinds and
 * encodes entries, hard state and snapshots itself. See `wal.ts` and `snapshot_store.ts`
 * for the on-disk formats and the recovery rules.
 * @module
 */
export * from "./crc32c.ts";
export * from "./fs.ts";
export * from "./wal.ts";
export * from "./snapshot_store.ts";
