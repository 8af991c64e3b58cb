/**
 * The Raft core's view of its log: stable entries in {@linkcode RaftStorage} plus entries
 * and a snapshot not yet handed to the driver for persistence ("unstable").
 * @module
 */
import { ErrCompacted, ErrUnavailable, type RaftStorage } from "./storage.ts";
import type { Entry, Snapshot } from "./types.ts";

/** Thrown when a Raft invariant is broken: a programming error, never an operating one. */
export class RaftInvariantError extends Error {
  /** Creates the error with a message naming the invariant and the values involved. */
  constructor(message: string) {
    super(`raft invariant violated: ${message}`);
    this.name = "RaftInvariantError";
  }
}

/** Throws {@linkcode RaftInvariantError} unless `cond` holds. */
export function assert(cond: boolean, message: () => string): asserts cond {
  if (!cond) throw new RaftInvariantError(message());
}

/** Entries and snapshot not yet persisted. `offset` is the index of `entries[0]`. */
class _Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.meta.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    if (this.entries.length === 0) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // The whole unstable tail is replaced; storage's overlapping suffix is overwritten
      // when the driver persists these entries.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }
}

/** Log view used by the node; `committed` and `applied` are tracked here. */
export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: _Unstable;
  committed: number;
  /** Highest index handed to the application in a Ready. */
  applying: number;
  /** Highest index the application has confirmed applied (via advance). */
  applied: number;

  constructor(storage: RaftStorage, committed: number) {
    this.storage = storage;
    const first = storage.firstIndex();
    this.unstable = new _Unstable(storage.lastIndex() + 1);
    this.committed = Math.max(committed, first - 1);
    this.applied = first - 1;
    this.applying = first - 1;
    assert(
      this.committed <= storage.lastIndex(),
      () => `commit ${this.committed} is past the stored last index ${storage.lastIndex()}`,
    );
  }

  firstIndex(): number {
    const s = this.unstable.snapshot;
    return s ? s.meta.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry `i`, or undefined when compacted or past the end. */
  term(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return undefined;
      throw e;
    }
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, () => `no term for last index ${this.lastIndex()}`);
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** Whether a log ending at (`index`, `term`) is at least as up to date as ours. */
  isUpToDate(index: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && index >= this.lastIndex());
  }

  /**
   * Entries [lo, hi) capped at `maxCount`, or undefined if `lo` is compacted. Callers keep
   * `hi` ≤ lastIndex()+1.
   */
  slice(lo: number, hi: number, maxCount: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    hi = Math.min(hi, this.lastIndex() + 1, lo + maxCount);
    if (lo >= hi) return [];
    const off = this.unstable.offset;
    let out: Entry[] = [];
    if (lo < off) {
      try {
        out = this.storage.entries(lo, Math.min(hi, off), hi - lo);
      } catch (e) {
        if (e instanceof ErrCompacted) return undefined;
        throw e;
      }
      if (out.length < Math.min(hi, off) - lo) return out;
    }
    if (hi > off) {
      const from = Math.max(lo, off) - off;
      const u = this.unstable.entries.slice(from, hi - off);
      out = out.length > 0 ? out.concat(u) : u;
    }
    return out;
  }

  /** Appends entries after the caller checked they follow on from our log; returns last index. */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    assert(
      after >= this.committed,
      () => `append after ${after} would overwrite committed entries (commit ${this.committed})`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Follower-side append of entries that follow (`index`, `logTerm`): skips entries we
   * already hold, truncates at the first conflict. Returns the new last index, or undefined
   * when our log does not contain (`index`, `logTerm`).
   */
  maybeAppend(index: number, logTerm: number, commit: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    let conflict = 0;
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) {
        conflict = e.index;
        break;
      }
    }
    if (conflict > 0) {
      assert(
        conflict > this.committed,
        () => `entry ${conflict} conflicts with committed entry (commit ${this.committed})`,
      );
      this.append(ents.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Raises the commit index; never lowers it. */
  commitTo(c: number): void {
    if (c <= this.committed) return;
    assert(
      c <= this.lastIndex(),
      () => `commit ${c} is past the last index ${this.lastIndex()}`,
    );
    this.committed = c;
  }

  /**
   * For a rejected probe at `index`: the largest index ≤ `index` whose term is ≤ `term`,
   * so the leader can skip a whole term of mismatching entries in one round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i >= 0; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /** The snapshot to send: pending unstable one, else the stored one. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log by an incoming snapshot. */
  restore(snap: Snapshot): void {
    this.committed = snap.meta.index;
    this.applying = Math.max(this.applying, snap.meta.index);
    this.unstable.snapshot = snap;
    this.unstable.entries = [];
    this.unstable.offset = snap.meta.index + 1;
  }

  /** Marks unstable entries through (`i`, `t`) as persisted, if they are still ours. */
  stableTo(i: number, t: number): void {
    const got = this.unstable.maybeTerm(i);
    if (got !== t || i < this.unstable.offset) return;
    this.unstable.entries = this.unstable.entries.slice(i + 1 - this.unstable.offset);
    this.unstable.offset = i + 1;
  }

  /** Marks the unstable snapshot at `i` as persisted. */
  stableSnapTo(i: number): void {
    if (this.unstable.snapshot && this.unstable.snapshot.meta.index === i) {
      this.unstable.snapshot = undefined;
    }
  }
}
