/**
 * The stable-storage interface the Raft core reads its log through, and an array-backed
 * in-memory implementation that the driver keeps as its view of the WAL.
 * @module
 */
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

/** The requested index was compacted away into a snapshot. */
export class ErrCompacted extends Error {
  /** Creates the error for `index` given the first index still held. */
  constructor(index: number, firstIndex: number) {
    super(`raft storage: index ${index} is compacted (first available index ${firstIndex})`);
    this.name = "ErrCompacted";
  }
}

/** The requested index is past the end of the log. */
export class ErrUnavailable extends Error {
  /** Creates the error for `index` given the last index held. */
  constructor(index: number, lastIndex: number) {
    super(`raft storage: index ${index} is unavailable (last index ${lastIndex})`);
    this.name = "ErrUnavailable";
  }
}

/** A snapshot older than the one already held was offered. */
export class ErrSnapOutOfDate extends Error {
  /** Creates the error for the offered and held snapshot indexes. */
  constructor(offered: number, held: number) {
    super(`raft storage: snapshot at ${offered} is older than the held snapshot at ${held}`);
    this.name = "ErrSnapOutOfDate";
  }
}

/** What the Raft core reads on start-up and while replicating. */
export interface RaftStorage {
  /** The persisted hard state and the membership as of the snapshot. */
  initialState(): { hardState: HardState; conf: ConfState };
  /** Entries [lo, hi), at most `maxCount` of them; throws ErrCompacted / ErrUnavailable. */
  entries(lo: number, hi: number, maxCount?: number): Entry[];
  /** Term of entry `i`; valid for firstIndex()-1 ..= lastIndex(). */
  term(i: number): number;
  /** Index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry held (snapshot index when the log is empty). */
  lastIndex(): number;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
  /** Records an application snapshot at `index` (≤ last index) and drops earlier entries. */
  compact(index: number, data: Uint8Array, conf: ConfState): void;
}

/** Copies a ConfState so callers can never alias internal arrays. */
export function cloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}

/** Physical array slicing happens only once this many dead slots pile up (amortised O(1)). */
const COMPACT_SLACK_MIN = 1024;

/**
 * In-memory storage. `ents[head]` is a dummy entry standing for the snapshot position, so
 * appends are `push`, truncation is a length change and compaction moves `head`.
 */
export class MemoryStorage implements RaftStorage {
  #hard: HardState = { term: 0, vote: null, commit: 0 };
  #snap: Snapshot = {
    meta: { index: 0, term: 0, conf: { voters: [], learners: [] } },
    data: new Uint8Array(),
  };
  #ents: Entry[] = [{ term: 0, index: 0, type: "normal", data: new Uint8Array() }];
  #head = 0;

  /**
   * Storage for a founding member: a snapshot at index 1, term 1 holding the initial
   * membership. Nodes that join later start from `new MemoryStorage()` and receive that
   * membership by InstallSnapshot.
   */
  static bootstrap(conf: ConfState, data: Uint8Array = new Uint8Array()): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot({ meta: { index: 1, term: 1, conf: cloneConf(conf) }, data });
    s.setHardState({ term: 1, vote: null, commit: 1 });
    return s;
  }

  /** See {@linkcode RaftStorage.initialState}. */
  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: { ...this.#hard }, conf: cloneConf(this.#snap.meta.conf) };
  }

  /** The persisted hard state. */
  hardState(): HardState {
    return { ...this.#hard };
  }

  /** Persists the hard state (the caller has made it durable). */
  setHardState(hs: HardState): void {
    this.#hard = { ...hs };
  }

  #offset(): number {
    return this.#ents[this.#head]!.index;
  }

  /** See {@linkcode RaftStorage.firstIndex}. */
  firstIndex(): number {
    return this.#offset() + 1;
  }

  /** See {@linkcode RaftStorage.lastIndex}. */
  lastIndex(): number {
    return this.#ents[this.#ents.length - 1]!.index;
  }

  /** See {@linkcode RaftStorage.term}. */
  term(i: number): number {
    const off = this.#offset();
    if (i < off) throw new ErrCompacted(i, off + 1);
    if (i > this.lastIndex()) throw new ErrUnavailable(i, this.lastIndex());
    return this.#ents[this.#head + i - off]!.term;
  }

  /** See {@linkcode RaftStorage.entries}. */
  entries(lo: number, hi: number, maxCount = Number.MAX_SAFE_INTEGER): Entry[] {
    const off = this.#offset();
    if (lo <= off) throw new ErrCompacted(lo, off + 1);
    if (hi > this.lastIndex() + 1) throw new ErrUnavailable(hi - 1, this.lastIndex());
    const n = Math.max(0, Math.min(hi - lo, maxCount));
    const start = this.#head + lo - off;
    return this.#ents.slice(start, start + n);
  }

  /** See {@linkcode RaftStorage.snapshot}. */
  snapshot(): Snapshot {
    return this.#snap;
  }

  /**
   * Appends entries that the caller has made durable. Entries overlapping the tail replace
   * it (a conflicting suffix is truncated); entries already compacted are skipped.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const lastNew = entries[entries.length - 1]!.index;
    if (lastNew < first) return;
    const skip = Math.max(0, first - entries[0]!.index);
    const ents = skip > 0 ? entries.slice(skip) : entries;
    const at = ents[0]!.index;
    if (at > this.lastIndex() + 1) {
      throw new Error(
        `MemoryStorage.append: gap: first new index ${at} after last index ${this.lastIndex()}`,
      );
    }
    this.#ents.length = this.#head + at - this.#offset();
    for (const e of ents) this.#ents.push(e);
  }

  /** Replaces the whole log by a snapshot (InstallSnapshot after the caller persisted it). */
  applySnapshot(snap: Snapshot): void {
    const held = this.#snap.meta.index;
    if (snap.meta.index < held) throw new ErrSnapOutOfDate(snap.meta.index, held);
    this.#snap = { meta: { ...snap.meta, conf: cloneConf(snap.meta.conf) }, data: snap.data };
    this.#ents = [{
      term: snap.meta.term,
      index: snap.meta.index,
      type: "normal",
      data: new Uint8Array(),
    }];
    this.#head = 0;
    if (this.#hard.commit < snap.meta.index) {
      this.#hard = { ...this.#hard, commit: snap.meta.index };
    }
    if (this.#hard.term < snap.meta.term) this.#hard = { ...this.#hard, term: snap.meta.term };
  }

  /** See {@linkcode RaftStorage.compact}; compacting at or below the held snapshot is a no-op. */
  compact(index: number, data: Uint8Array, conf: ConfState): void {
    const off = this.#offset();
    if (index <= off) return;
    if (index > this.lastIndex()) {
      throw new ErrUnavailable(index, this.lastIndex());
    }
    const term = this.term(index);
    this.#snap = { meta: { index, term, conf: cloneConf(conf) }, data };
    const pos = this.#head + index - off;
    const dummy: Entry = { term, index, type: "normal", data: new Uint8Array() };
    this.#ents[pos] = dummy;
    this.#head = pos;
    // Dead slots before `head` are reclaimed in bulk so compaction stays amortised O(1).
    if (this.#head >= COMPACT_SLACK_MIN && this.#head * 2 >= this.#ents.length) {
      this.#ents = this.#ents.slice(this.#head);
      this.#head = 0;
    }
  }
}
