/**
 * The callers a control node owes an answer: proposals waiting for their entry to apply,
 * membership changes waiting for their conf entry, and linearizable reads waiting for their
 * read index. Each waiter ends in a result, an abort of its signal or {@linkcode Waiters.failAll};
 * none hangs. Kept apart from the Ready loop so the loop reads as persist, send, apply.
 * @module
 */
import type { Entry, ReadFailure, ReadState } from "../raft/types.ts";
import type { ApplyResult, ValidatedCommand } from "../registry/mod.ts";
import { NoQuorumError, NotLeaderError } from "../api/backend.ts";

/** A proposal waiting for its entry to be applied. */
export interface PendingProposal {
  /** The term the entry was proposed in; another term at that index means it was overwritten. */
  term: number;
  /** The validated command behind the entry, so the proposer applies it without decoding. */
  cmd: ValidatedCommand | null;
  /** Answers the caller. */
  resolve: (r: ApplyResult) => void;
  /** Fails the caller. */
  reject: (e: Error) => void;
}

interface _PendingConf {
  term: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface _Read {
  resolve: () => void;
  reject: (e: Error) => void;
  index?: number;
}

/** Settles a promise from the table under `key`, or with `onAbort()` when `signal` aborts first. */
function _settleable<T>(
  signal: AbortSignal,
  onAbort: () => Error,
  register: (resolve: (v: T) => void, reject: (e: Error) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(onAbort());
    signal.addEventListener("abort", abort, { once: true });
    register(
      (v) => {
        signal.removeEventListener("abort", abort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", abort);
        reject(e);
      },
    );
  });
}

/** Every caller a node still owes an answer. */
export class Waiters {
  readonly #proposals = new Map<number, PendingProposal>();
  readonly #confs = new Map<number, _PendingConf>();
  readonly #reads = new Map<string, _Read>();

  /** Proposals waiting now. */
  get proposals(): number {
    return this.#proposals.size;
  }

  /** Waits for the entry proposed at `at` to apply; an abort gives up the wait (503). */
  proposal(
    at: { index: number; term: number },
    cmd: ValidatedCommand | null,
    signal: AbortSignal,
  ): Promise<ApplyResult> {
    return _settleable<ApplyResult>(signal, () => {
      if (this.#proposals.get(at.index)?.term === at.term) this.#proposals.delete(at.index);
      return new NoQuorumError("the write was not committed in time");
    }, (resolve, reject) => this.#proposals.set(at.index, { term: at.term, cmd, resolve, reject }));
  }

  /** Removes and returns the proposal waiting at `index`. */
  takeProposal(index: number): PendingProposal | undefined {
    const p = this.#proposals.get(index);
    if (p) this.#proposals.delete(index);
    return p;
  }

  /** Waits for the conf change proposed at `at` to apply. */
  conf(at: { index: number; term: number }, signal: AbortSignal, abortMessage: string) {
    return _settleable<void>(signal, () => {
      this.#confs.delete(at.index);
      return new NoQuorumError(abortMessage);
    }, (resolve, reject) => this.#confs.set(at.index, { term: at.term, resolve, reject }));
  }

  /** Answers the conf change waiting for applied entry `e`. */
  confApplied(e: Entry): void {
    const p = this.#confs.get(e.index);
    if (!p) return;
    this.#confs.delete(e.index);
    if (p.term === e.term) p.resolve();
    else {
      p.reject(new NotLeaderError("leadership changed before the membership change committed"));
    }
  }

  /** Waits for read `ctx` to be released by {@linkcode releaseReads}. */
  read(ctx: string, signal: AbortSignal): Promise<void> {
    return _settleable<void>(signal, () => {
      this.#reads.delete(ctx);
      return new NoQuorumError("leadership could not be confirmed in time");
    }, (resolve, reject) => this.#reads.set(ctx, { resolve, reject }));
  }

  /** Records the read indexes and read failures of a Ready. */
  readResults(states: readonly ReadState[], failures: readonly ReadFailure[]): void {
    for (const rs of states) {
      const r = this.#reads.get(rs.ctx);
      if (!r) continue;
      r.index = rs.index;
    }
    for (const f of failures) {
      const r = this.#reads.get(f.ctx);
      if (!r) continue;
      this.#reads.delete(f.ctx);
      r.reject(
        f.reason === "no_leader" || f.reason === "stepped_down"
          ? new NotLeaderError(`read index failed: ${f.reason}`)
          : new NoQuorumError(`read index failed: ${f.reason}`),
      );
    }
  }

  /** Answers every read whose index is applied. */
  releaseReads(applied: number): void {
    for (const [ctx, r] of this.#reads) {
      if (r.index !== undefined && r.index <= applied) {
        this.#reads.delete(ctx);
        r.resolve();
      }
    }
  }

  /** Rejects every waiting proposal, membership change and read with `e`. */
  failAll(e: Error): void {
    for (const p of this.#proposals.values()) p.reject(e);
    this.#proposals.clear();
    for (const p of this.#confs.values()) p.reject(e);
    this.#confs.clear();
    for (const r of this.#reads.values()) r.reject(e);
    this.#reads.clear();
  }
}
