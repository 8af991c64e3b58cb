/**
 * The leader's per-follower replication state: probe (one append in flight until an
 * answer), replicate (pipelined, bounded by {@linkcode Inflights}) and snapshot.
 * @module
 */
import type { ProgressState, ProgressStatus } from "./types.ts";

/** A bounded FIFO of the last indexes of appends sent but not yet acknowledged. */
export class Inflights {
  readonly #cap: number;
  #buf: number[] = [];

  /** Creates a window of at most `cap` in-flight appends. */
  constructor(cap: number) {
    this.#cap = cap;
  }

  /** Whether no more appends may be sent. */
  full(): boolean {
    return this.#buf.length >= this.#cap;
  }

  /** Number of appends in flight. */
  count(): number {
    return this.#buf.length;
  }

  /** Records an append ending at `last`. */
  add(last: number): void {
    this.#buf.push(last);
  }

  /** Frees every append ending at or before `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.#buf.length && this.#buf[n]! <= index) n++;
    if (n > 0) this.#buf = this.#buf.slice(n);
  }

  /** Frees the oldest append, so a heartbeat answer can unstick a full window. */
  freeFirstOne(): void {
    this.#buf = this.#buf.slice(1);
  }

  /** Drops everything. */
  reset(): void {
    this.#buf = [];
  }
}

/** Replication progress of one peer. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** Index of the snapshot being sent while in `snapshot` state. */
  pendingSnapshot = 0;
  /** Leader tick at which the snapshot was sent, to resend a lost one. */
  snapshotSentTick = 0;
  /** Heard from within the current check-quorum window. */
  recentActive = false;
  /** In probe state: an append is outstanding, so wait for an answer or heartbeat. */
  probeSent = false;
  /** The tick of the last empty append sent to catch up a follower (at most one per tick). */
  emptyProbeTick = -1;
  learner: boolean;
  readonly inflights: Inflights;

  /** Creates progress for a peer, starting to probe at `next`. */
  constructor(next: number, maxInflight: number, learner: boolean) {
    this.next = next;
    this.learner = learner;
    this.inflights = new Inflights(maxInflight);
  }

  #reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** Back to probing from just after `match`. */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.#reset("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#reset("probe");
      this.next = this.match + 1;
    }
  }

  /** Pipelined replication from just after `match`. */
  becomeReplicate(): void {
    this.#reset("replicate");
    this.next = this.match + 1;
  }

  /** Waiting for a snapshot at `index` to be installed. */
  becomeSnapshot(index: number, tick: number): void {
    this.#reset("snapshot");
    this.pendingSnapshot = index;
    this.snapshotSentTick = tick;
  }

  /** Records an acknowledgement through `n`; returns whether `match` moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * Handles a rejection of the append at `rejected`; `matchHint` is the follower's
   * suggestion. Returns false when the rejection is stale and should be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending appends must wait. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  /** A plain-data copy for status output. */
  toStatus(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      learner: this.learner,
      recentActive: this.recentActive,
    };
  }
}
