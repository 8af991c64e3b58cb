/**
 * The control node's durable Raft state: a WAL of entries and hard states plus a snapshot
 * store, restored into the in-memory {@linkcode MemoryStorage} the Raft core reads.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import { decodeEntry, decodeHardState, encodeEntry, encodeHardState } from "../raft/codec.ts";
import { MemoryStorage } from "../raft/storage.ts";
import type { ConfState, Entry, HardState, Snapshot } from "../raft/types.ts";
import { SnapshotStore } from "../storage/snapshot_store.ts";
import { Wal, type WalRecord, type WalStats } from "../storage/wal.ts";
import type { StorageFs } from "../storage/fs.ts";

/** WAL record kinds written by the control node. */
export const WAL_KIND = { entry: 1, hardState: 2 } as const;

/** What a node finds in its data directory at start-up. */
export interface RestoredLog {
  /** The in-memory log view, ready for the Raft core. */
  storage: MemoryStorage;
  /** Whether the directory held no state at all (a brand-new node). */
  fresh: boolean;
}

/** Owns the WAL and the snapshot store of one control node. */
export class DurableLog {
  readonly #wal: Wal;
  readonly #snaps: SnapshotStore;
  readonly #log: Logger;
  /** For each WAL segment, the highest entry index written into it (to release old segments). */
  readonly #segmentMaxIndex = new Map<number, number>();
  #lastHardState: HardState | null = null;

  private constructor(wal: Wal, snaps: SnapshotStore, log: Logger) {
    this.#wal = wal;
    this.#snaps = snaps;
    this.#log = log;
  }

  /**
   * Opens `dir/wal` and `dir/snap`, and rebuilds the log: newest snapshot first, then every
   * WAL record in order. A corrupt record mid-log is an error, never a silent truncation.
   * `fs` is the real disk unless a test hands in a simulated one.
   */
  static async open(
    dir: string,
    log: Logger,
    fs?: StorageFs,
  ): Promise<{ durable: DurableLog } & RestoredLog> {
    const snaps = await SnapshotStore.open(`${dir}/snap`, { fs }, log);
    const { wal, records, recovery } = await Wal.open(`${dir}/wal`, { fs }, log);
    if (recovery.tornTail) {
      log.warn("wal: dropped a torn tail", {
        file: recovery.tornTail.file,
        offset: recovery.tornTail.offset,
        bytes: recovery.tornTail.droppedBytes,
        reason: recovery.tornTail.reason,
      });
    }
    const durable = new DurableLog(wal, snaps, log);
    const storage = new MemoryStorage();
    const snap = await snaps.load();
    if (snap) {
      const conf = snap.metadata as ConfState;
      storage.applySnapshot({
        meta: { index: snap.index, term: snap.term, conf },
        data: snap.payload,
      });
    }
    let pending: Entry[] = [];
    const flush = () => {
      if (pending.length > 0) storage.append(pending);
      pending = [];
    };
    for (const r of records) {
      if (r.kind === WAL_KIND.entry) {
        const e = decodeEntry(r.payload);
        // A rewritten index (after a leader change) starts a new run; append handles overlap.
        const last = pending[pending.length - 1];
        if (last && e.index !== last.index + 1) flush();
        pending.push(e);
        durable.#segmentMaxIndex.set(
          r.segment,
          Math.max(durable.#segmentMaxIndex.get(r.segment) ?? 0, e.index),
        );
      } else if (r.kind === WAL_KIND.hardState) {
        flush();
        const hs = decodeHardState(r.payload);
        storage.setHardState(hs);
        durable.#lastHardState = hs;
      } else {
        throw new Error(`wal: unknown record kind ${r.kind} in segment ${r.segment}`);
      }
    }
    flush();
    const fresh = !snap && records.length === 0;
    return { durable, storage, fresh };
  }

  /**
   * Makes entries and the hard state durable with one fsync. A hard state whose term and vote
   * are unchanged and that comes without entries is written but not fsynced (etcd's `MustSync`
   * rule): only its commit index moved, which Raft may forget in a crash (a restarted node
   * learns the commit again from the leader), and that fsync would otherwise be a whole extra
   * disk round on every leader between two batches of entries.
   */
  async persist(hardState: HardState | undefined, entries: readonly Entry[]): Promise<void> {
    const prev = this.#lastHardState;
    const mustSync = entries.length > 0 || !hardState || !prev ||
      hardState.term !== prev.term || hardState.vote !== prev.vote;
    await this.#persist(hardState, entries, mustSync);
  }

  async #persist(
    hardState: HardState | undefined,
    entries: readonly Entry[],
    sync: boolean,
  ): Promise<void> {
    const records: WalRecord[] = [];
    for (const e of entries) records.push({ kind: WAL_KIND.entry, payload: encodeEntry(e) });
    if (hardState) {
      records.push({ kind: WAL_KIND.hardState, payload: encodeHardState(hardState) });
    }
    if (records.length === 0) return;
    const pos = await this.#wal.append(records, { sync });
    if (entries.length > 0) {
      const maxIdx = entries[entries.length - 1]!.index;
      this.#segmentMaxIndex.set(
        pos.segment,
        Math.max(this.#segmentMaxIndex.get(pos.segment) ?? 0, maxIdx),
      );
    }
    if (hardState) this.#lastHardState = hardState;
  }

  /**
   * Saves a snapshot atomically, then drops WAL segments it covers. The current hard state is
   * written again first so that releasing old segments never loses the term or vote.
   */
  async saveSnapshot(snap: Snapshot): Promise<void> {
    await this.#snaps.save({
      index: snap.meta.index,
      term: snap.meta.term,
      metadata: snap.meta.conf,
      payload: snap.data,
    });
    // Synced even though nothing changed: the segments released below may hold the only
    // durable copy of the term and vote.
    if (this.#lastHardState) await this.#persist(this.#lastHardState, [], true);
    const active = this.#wal.position.segment;
    let releaseBefore = 0;
    for (const seg of [...this.#segmentMaxIndex.keys()].sort((a, b) => a - b)) {
      if (seg >= active) break;
      if ((this.#segmentMaxIndex.get(seg) ?? 0) <= snap.meta.index) releaseBefore = seg + 1;
      else break;
    }
    if (releaseBefore > 0) {
      const n = await this.#wal.releaseBefore(releaseBefore);
      for (const seg of [...this.#segmentMaxIndex.keys()]) {
        if (seg < releaseBefore) this.#segmentMaxIndex.delete(seg);
      }
      if (n > 0) this.#log.debug("wal: released segments", { count: n, before: releaseBefore });
    }
  }

  /** The WAL's group-commit counters (fsyncs, appends, bytes). */
  walStats(): WalStats {
    return this.#wal.stats();
  }

  /** Closes the WAL. */
  async close(): Promise<void> {
    await this.#wal.close();
  }
}
