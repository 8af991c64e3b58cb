/**
 * The Ready loop of a control node: the one place where the pure Raft core meets the disk, the
 * peer network and the registry. It persists each Ready, then sends, then applies (etcd's
 * order), and resolves proposals and linearizable reads. All I/O comes in as ports (a durable
 * log on an injected file system, a {@linkcode PeerNet}, a {@linkcode Clock}), so the
 * deterministic simulation in `tests/sim/` runs this very loop on a fake disk and network.
 * What the loop does not know itself (member addresses, leader duties, the TLS identity) it
 * hands to {@linkcode DriverHooks}.
 * @module
 */
import { type Logger, type NodeId, nodeId } from "../../common/mod.ts";
import { decodeConfChange, decodeMessage, encodeMessage } from "../raft/codec.ts";
import { RaftNode } from "../raft/node.ts";
import type { MemoryStorage } from "../raft/storage.ts";
import type { ConfChange, Entry, Message, ProposeResult, Ready } from "../raft/types.ts";
import {
  type ApplyResult,
  decodeCommittedCommand,
  encodeSnapshotYielding,
  IndexWatcher,
  RegistryState,
  type ValidatedCommand,
} from "../registry/mod.ts";
import { BackendError, NotLeaderError } from "../api/backend.ts";
import type { DurableLog } from "./durable_log.ts";
import { Waiters } from "./waiters.ts";
import {
  decodeMemberEntry,
  decodeSnapshotPayload,
  encodeSnapshotPayload,
  FRAME_RAFT,
  isMemberEntry,
  type MemberAddress,
} from "./envelope.ts";
import type { Clock, PeerNet } from "./ports.ts";
import { changesVote, logVoteDecisions, logVotePersisted } from "./election_log.ts";

/** Proposals waiting for commit at once; more are refused as overload. */
export const MAX_PENDING_PROPOSALS = 65_536;
/** The Ready loop waiting this long on one step is logged as a stall. */
export const STALL_WARN_MS = 2000;

/** Options of {@linkcode NodeDriver}. */
export interface DriverOptions {
  /** This node's id. */
  node: string;
  /** Election timeout in ticks. */
  electionTicks: number;
  /** Applied entries between snapshots. */
  snapshotEvery: number;
  /** Random source for Raft timeouts. */
  random: () => number;
  /** Logger. */
  log: Logger;
  /** Time and timers. */
  clock: Clock;
}

/** What the loop asks of the rest of the node. */
export interface DriverHooks {
  /** The role or leader changed (after the driver logged it). */
  onRoleChange(role: string, leader: NodeId | null, wasLeader: boolean): void;
  /** A member-address entry was applied. */
  onMemberEntry(m: MemberAddress): void;
  /** A membership change was applied. */
  onConfApplied(cc: ConfChange): void;
  /** A snapshot replaced the state; `members` are the addresses it carried. */
  onRestore(members: MemberAddress[]): void;
  /** Entries or a snapshot were applied (the state may hold a new CA). */
  onApplied(): void;
  /** The member addresses a snapshot records. */
  snapshotMembers(): MemberAddress[];
  /** A peer frame that is not a Raft message. */
  onFrame(from: NodeId, frame: Uint8Array): void;
  /** The loop stopped on an error it cannot recover from (a failed fsync). */
  onFatal(e: Error): Promise<void>;
}

/** Leader messages that may go out before the Ready's fsync (they carry no promise). */
const _EARLY_SEND: ReadonlySet<Message["type"]> = new Set(["app", "heartbeat", "snap"]);

/** Runs one node's Raft core against its ports. */
export class NodeDriver {
  readonly id: NodeId;
  readonly watcher: IndexWatcher;
  readonly raft: RaftNode;
  readonly #opts: DriverOptions;
  readonly #log: Logger;
  readonly #storage: MemoryStorage;
  readonly #durable: DurableLog;
  #hooks!: DriverHooks;
  #net!: PeerNet;
  #state: RegistryState;
  readonly #waiters = new Waiters();
  #readSeq = 0;
  #role = "follower";
  #leader: string | null = null;
  #snapIndex = 0;
  /** Whether a snapshot is being encoded off the Raft loop. */
  #encodingSnapshot = false;
  /** A snapshot encoded off the loop, waiting for the loop to compact to it and save it. */
  #encodedSnapshot: {
    applied: number;
    state: RegistryState;
    data: Uint8Array;
    captureMs: number;
    encodeMs: number;
    sliceMs: number;
  } | null = null;
  /** Index of the last entry this driver applied; Raft's own `applied` lags until advance(). */
  #applied = 0;
  #pumping = false;
  #again = false;
  /** What the Ready loop awaits right now and since when, for the stall watchdog. */
  #stage = "idle";
  #stageSince = 0;
  #stallReported = false;
  /** The leader (`id@term`) whose lost connections already expired the election clock. */
  #leaderGoneFor = "";
  /** When a message from the leader of the moment last arrived (clock ms). */
  #leaderHeardAt = Number.NEGATIVE_INFINITY;
  #closed = false;
  #fatal: Error | null = null;
  readonly #failed = Promise.withResolvers<Error>();

  /** Restores the registry from the storage's snapshot; call {@linkcode attach} before use. */
  constructor(opts: DriverOptions, storage: MemoryStorage, durable: DurableLog) {
    this.#opts = opts;
    this.#log = opts.log;
    this.id = nodeId(opts.node);
    this.#storage = storage;
    this.#durable = durable;
    const snap = storage.snapshot();
    const { registry } = decodeSnapshotPayload(snap.data);
    this.#state = registry ? RegistryState.restore(registry) : new RegistryState();
    this.#snapIndex = snap.meta.index;
    this.#applied = snap.meta.index;
    this.watcher = new IndexWatcher(this.#state.index);
    this.raft = new RaftNode({
      id: this.id,
      electionTicks: opts.electionTicks,
      heartbeatTicks: 1,
      preVote: true,
      checkQuorum: true,
      maxInflightMsgs: 256,
      maxEntriesPerMsg: 512,
      coalesceAppends: true,
      rankedTimeouts: true,
      random: opts.random,
      storage,
      logger: opts.log,
    });
  }

  /** The member addresses stored in the snapshot this node started from. */
  snapshotMembers(): MemberAddress[] {
    return decodeSnapshotPayload(this.#storage.snapshot().data).members;
  }

  /** Connects the loop to the rest of the node and to its network. */
  attach(hooks: DriverHooks, net: PeerNet): void {
    this.#hooks = hooks;
    this.#net = net;
  }

  /** The registry state machine as applied so far. */
  get state(): RegistryState {
    return this.#state;
  }

  /** The role as of the last Ready (`leader`, `follower`, ...). */
  get role(): string {
    return this.#role;
  }

  /** Resolves with the error that stopped this node (a storage failure or broken invariant). */
  get failed(): Promise<Error> {
    return this.#failed.promise;
  }

  /**
   * Ms since this node last heard from its leader: 0 on the leader itself, Infinity when it
   * never heard one. How stale a read answered from this node's state may be.
   */
  sinceLeaderContact(): number {
    if (this.raft.status().role === "leader") return 0;
    return Math.max(0, this.#opts.clock.now() - this.#leaderHeardAt);
  }

  /** Throws the 503 a caller gets from a stopped or closing node. */
  checkUsable(): void {
    if (this.#fatal) throw new BackendError(503, "storage_failure", this.#fatal.message);
    if (this.#closed) throw new BackendError(503, "shutting_down", "control node is shutting down");
  }

  /** One Raft tick, with the stall watchdog and the early-expiry check of a lost leader. */
  tick(): void {
    if (this.#closed) return;
    this.#watchStall();
    this.raft.tick();
    this.#maybeLeaderGone();
    this.kick();
  }

  /** Handles a peer frame: Raft messages here, everything else to the hooks. */
  onFrame(from: NodeId, frame: Uint8Array): void {
    if (this.#closed || frame.length === 0) return;
    try {
      if (frame[0] !== FRAME_RAFT) {
        this.#hooks.onFrame(from, frame);
        return;
      }
      const msg = decodeMessage(frame.subarray(1));
      if (msg.from !== from) {
        this.#log.warn("dropping a raft message whose sender differs from its connection", {
          conn: from,
          from: msg.from,
        });
        return;
      }
      this.raft.step(msg);
      if (
        (msg.type === "app" || msg.type === "heartbeat" || msg.type === "snap") &&
        this.raft.status().leader === from
      ) {
        this.#leaderHeardAt = this.#opts.clock.now();
      }
      this.kick();
    } catch (e) {
      this.#log.warn("dropping a malformed frame", { from, error: e as Error });
    }
  }

  /**
   * A follower whose connections to the leader both broke (a crashed leader's kernel resets
   * them) lets its election clock run out now instead of waiting a full timeout: its voter lease
   * ends and it campaigns after the remaining random part of the timeout. Only liveness changes:
   * Raft's safety never depends on timing, reads use ReadIndex (no clock lease), and pre-vote
   * still stops a node whose peers hear the leader from disrupting it.
   */
  #maybeLeaderGone(): void {
    const st = this.raft.status();
    if (st.role !== "follower" || st.leader === null || st.leader === this.id) return;
    const key = `${st.leader}@${st.term}`;
    if (this.#leaderGoneFor === key) return;
    if (this.#net.connected(st.leader) !== false) return;
    this.#leaderGoneFor = key;
    this.#log.info("lost every connection to the leader; expiring its lease early", {
      leader: st.leader,
      term: st.term,
    });
    for (let i = 0; i < this.#opts.electionTicks; i++) this.raft.tick();
  }

  // ---------------------------------------------------------------- proposals and reads

  /** Maps a refused proposal to the error the API answers with. */
  proposeFailure(r: Exclude<ProposeResult, { ok: true }>): Error {
    switch (r.reason) {
      case "not_leader":
      case "transferring":
        return new NotLeaderError();
      case "overloaded":
        return new BackendError(503, "overloaded", "too many uncommitted writes; retry later");
      default:
        return new BackendError(409, r.reason, r.detail);
    }
  }

  /** Proposes a validated command on this (leader) node, bounded by the pending-proposal cap. */
  proposeChecked(
    data: Uint8Array,
    cmd: ValidatedCommand,
    signal: AbortSignal,
  ): Promise<ApplyResult> {
    if (this.#waiters.proposals >= MAX_PENDING_PROPOSALS) {
      return Promise.reject(
        new BackendError(503, "overloaded", "too many writes waiting to commit; retry later"),
      );
    }
    return this.proposeData(data, signal, cmd);
  }

  /** Proposes raw entry bytes; resolves once the entry is applied here. */
  proposeData(
    data: Uint8Array,
    signal: AbortSignal,
    cmd: ValidatedCommand | null = null,
  ): Promise<ApplyResult> {
    const r = this.raft.propose(data);
    if (!r.ok) return Promise.reject(this.proposeFailure(r));
    this.kick();
    return this.#waiters.proposal(r, cmd, signal);
  }

  /** Proposes a membership change; resolves once it is applied here. */
  proposeConf(
    op: "add_learner" | "promote" | "remove",
    node: string,
    signal: AbortSignal,
    abortMessage = "the membership change was not committed in time",
  ): Promise<void> {
    const r = this.raft.proposeConfChange({ op, node: nodeId(node) });
    if (!r.ok) return Promise.reject(this.proposeFailure(r));
    return this.waitConf(r, signal, abortMessage);
  }

  /** Waits for a membership change the core accepted at `at` to be applied here. */
  waitConf(
    at: { index: number; term: number },
    signal: AbortSignal,
    abortMessage: string,
  ): Promise<void> {
    this.kick();
    return this.#waiters.conf(at, signal, abortMessage);
  }

  /** Resolves once this node's applied state is at least the leader's commit at call time. */
  linearizableRead(signal: AbortSignal): Promise<void> {
    this.checkUsable();
    const ctx = `${this.#opts.node}-${++this.#readSeq}`;
    const p = this.#waiters.read(ctx, signal);
    this.raft.readIndex(ctx);
    this.kick();
    return p;
  }

  /** Rejects every waiting proposal, membership change and read with `e`. */
  failAll(e: Error): void {
    this.#waiters.failAll(e);
  }

  // ---------------------------------------------------------------- the Ready loop

  #setStage(stage: string): void {
    this.#stage = stage;
    this.#stageSince = this.#opts.clock.now();
    this.#stallReported = false;
  }

  #watchStall(): void {
    if (this.#stage === "idle" || this.#stallReported) return;
    const ms = this.#opts.clock.now() - this.#stageSince;
    if (ms < STALL_WARN_MS) return;
    this.#stallReported = true;
    this.#log.warn("ready loop stalled", { stage: this.#stage, ms });
  }

  /** Schedules a pass of the Ready loop (one at a time; a kick during a pass repeats it). */
  kick(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    queueMicrotask(() => this.#pump());
  }

  async #pump(): Promise<void> {
    try {
      do {
        this.#again = false;
        while (!this.#closed && this.raft.hasReady()) {
          await this.#handleReady(this.raft.ready());
          this.raft.advance();
        }
      } while (this.#again && !this.#closed);
    } catch (e) {
      // A failed fsync (or a broken invariant) leaves us unable to promise durability: stop
      // serving rather than lie. The process owner sees `failed` and exits non-zero.
      this.#fatal = e as Error;
      this.#log.error("control node stopping after a fatal error in the ready loop", {
        stage: this.#stage,
        error: e as Error,
        stack: (e as Error).stack?.split("\n").slice(1, 6).join(" | "),
      });
      const err = new BackendError(503, "storage_failure", `storage failure: ${e}`);
      this.failAll(err);
      this.#failed.resolve(e as Error);
      await this.#hooks.onFatal(err);
    } finally {
      this.#pumping = false;
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.#onSoftState(rd.softState.role, rd.softState.leader);
    logVoteDecisions(this.#log, rd.voteDecisions);
    if (rd.snapshot) {
      this.#setStage("save_received_snapshot");
      await this.#durable.saveSnapshot(rd.snapshot);
      this.#storage.applySnapshot(rd.snapshot);
      this.#restoreFrom(rd.snapshot.data, rd.snapshot.meta.index);
    }
    // A leader may send its appends before its own fsync (Raft thesis 10.2.1, as etcd does):
    // the disk write overlaps the round trip. Safe because the pump is sequential: a commit
    // index covering these entries leaves only in a later Ready, after this fsync finished.
    // Answers (votes, append responses) always wait for the fsync.
    let early = false;
    if (this.#role === "leader" && rd.messages.length > 0) {
      early = true;
      for (const m of rd.messages) {
        if (_EARLY_SEND.has(m.type)) this.#send(m);
      }
    }
    // Committed entries that were already durable here before this Ready (and are not being
    // rewritten by it) are applied while the fsync runs: a write is then acknowledged after
    // one fsync round instead of two. Only entries new in this Ready wait for its fsync.
    let ce = rd.committedEntries;
    if (!rd.snapshot && ce.length > 0) {
      let durableThrough = this.#storage.lastIndex();
      if (rd.entries.length > 0) {
        durableThrough = Math.min(durableThrough, rd.entries[0]!.index - 1);
      }
      let n = 0;
      while (n < ce.length && ce[n]!.index <= durableThrough) n++;
      if (n > 0) {
        this.#apply(n === ce.length ? ce : ce.slice(0, n));
        ce = n === ce.length ? [] : ce.slice(n);
      }
    }
    if (rd.hardState || rd.entries.length > 0) {
      this.#setStage("persist");
      const prev = this.#storage.hardState();
      const t0 = performance.now();
      await this.#durable.persist(rd.hardState, rd.entries);
      if (rd.hardState && changesVote(prev, rd.hardState)) {
        logVotePersisted(this.#log, rd.hardState, performance.now() - t0);
      }
      if (rd.entries.length > 0) this.#storage.append(rd.entries);
      if (rd.hardState) this.#storage.setHardState(rd.hardState);
    }
    for (const m of rd.messages) if (!early || !_EARLY_SEND.has(m.type)) this.#send(m);
    if (ce.length > 0) this.#apply(ce);
    this.#waiters.readResults(rd.readStates, rd.readFailures);
    this.#waiters.releaseReads(this.#applied);
    await this.#maybeSnapshot();
    this.#setStage("idle");
  }

  #send(m: Message): void {
    const body = encodeMessage(m);
    const frame = new Uint8Array(body.length + 1);
    frame[0] = FRAME_RAFT;
    frame.set(body, 1);
    if (!this.#net.send(m.to, frame) && m.type === "snap") {
      this.raft.reportSnapshot(m.to, false);
    }
  }

  #onSoftState(role: string, leader: NodeId | null): void {
    const wasLeader = this.#role === "leader";
    if (leader !== this.#leader) {
      this.#log.info("leader changed", { leader: leader ?? "none", role });
    } else if (role !== this.#role) {
      this.#log.info("role changed", { role, term: this.raft.status().term });
    }
    this.#role = role;
    this.#leader = leader;
    this.#hooks.onRoleChange(role, leader, wasLeader);
  }

  #apply(entries: Entry[]): void {
    for (const e of entries) {
      this.#applied = e.index;
      if (e.type === "conf") {
        this.#onConfApplied(e);
        continue;
      }
      const pending = this.#waiters.takeProposal(e.index);
      if (e.data.length === 0) {
        // A new leader's no-op; a proposal waiting at this index was overwritten.
        pending?.reject(new NotLeaderError("leadership changed before the write committed"));
        continue;
      }
      if (isMemberEntry(e.data)) {
        try {
          this.#hooks.onMemberEntry(decodeMemberEntry(e.data));
        } catch (err) {
          this.#log.error("skipping an undecodable member entry", {
            index: e.index,
            error: err as Error,
          });
        }
        pending?.resolve({ ok: true, index: e.index } as unknown as ApplyResult);
        continue;
      }
      let result: ApplyResult;
      try {
        // An entry this node proposed at this exact (index, term) holds the command it already
        // validated: skip JSON and schema. Every other entry was validated by the leader that
        // proposed it, so it gets a structural check only (decodeCommittedCommand).
        const cmd = pending?.cmd && pending.term === e.term
          ? pending.cmd
          : decodeCommittedCommand(e.data);
        result = this.#state.applyValidated(e.index, cmd);
      } catch (err) {
        // Every node applies the same log, so an undecodable entry is skipped identically.
        this.#log.error("skipping an undecodable registry entry", {
          index: e.index,
          error: err as Error,
        });
        pending?.reject(new BackendError(400, "bad_command", String(err)));
        continue;
      }
      if (pending) {
        if (pending.term === e.term) pending.resolve(result);
        else pending.reject(new NotLeaderError("leadership changed before the write committed"));
      }
    }
    this.#hooks.onApplied();
    this.watcher.notify(this.#state.index);
  }

  #onConfApplied(e: Entry): void {
    this.#waiters.confApplied(e);
    // The core applies the change itself only at advance(), after this Ready: so read the
    // change from the entry.
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch {
      return; // The core skips undecodable conf entries identically on every node.
    }
    this.#hooks.onConfApplied(cc);
  }

  #restoreFrom(data: Uint8Array, index: number): void {
    const { members, registry } = decodeSnapshotPayload(data);
    this.#state = registry ? RegistryState.restore(registry) : new RegistryState();
    this.#snapIndex = index;
    this.#applied = index;
    this.#hooks.onRestore(members);
    this.#hooks.onApplied();
    this.watcher.notify(this.#state.index);
  }

  /**
   * Takes a snapshot every `snapshotEvery` applied entries. The state is captured at once, but
   * encoded in slices off the Raft loop (50,000 instances held a leader's loop, and so its
   * heartbeats, for up to 0.9 s); a later pass of the loop compacts the log to it and saves it.
   */
  async #maybeSnapshot(): Promise<void> {
    const done = this.#encodedSnapshot;
    if (done !== null) {
      this.#encodedSnapshot = null;
      // A snapshot installed from the leader meanwhile makes this one moot.
      if (done.state !== this.#state || done.applied <= this.#snapIndex) return;
      this.raft.compact(done.applied, done.data);
      this.#snapIndex = done.applied;
      this.#setStage("save_snapshot");
      const t1 = performance.now();
      await this.#durable.saveSnapshot(this.#storage.snapshot());
      // Size and times, so an operator can see what a fleet's registry costs to snapshot.
      this.#log.info("snapshot saved", {
        index: done.applied,
        bytes: done.data.length,
        // What held the event loop: the capture, then the longest slice of the encoding.
        capture_ms: done.captureMs,
        longest_slice_ms: done.sliceMs,
        encode_ms: done.encodeMs,
        save_ms: Math.round(performance.now() - t1),
      });
      return;
    }
    const applied = this.#applied;
    if (this.#encodingSnapshot || applied - this.#snapIndex < this.#opts.snapshotEvery) return;
    const members = this.#hooks.snapshotMembers();
    const t0 = performance.now();
    const state = this.#state;
    const parts = state.snapshotParts();
    const captureMs = Math.round(performance.now() - t0);
    this.#encodingSnapshot = true;
    const stats = { longestSliceMs: 0 };
    encodeSnapshotYielding(parts, undefined, stats).then((registry) => {
      this.#encodedSnapshot = {
        applied,
        state,
        data: encodeSnapshotPayload(members, registry),
        captureMs,
        encodeMs: Math.round(performance.now() - t0),
        sliceMs: Math.round(stats.longestSliceMs),
      };
    }).catch((e) => {
      this.#log.error("snapshot encoding failed", { err: e as Error, index: applied });
    }).finally(() => {
      this.#encodingSnapshot = false;
    });
  }

  /** Marks the loop closed and rejects every waiter with `e`; the loop stops after its step. */
  stop(e: Error): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.failAll(e);
    return true;
  }

  /** Waits (bounded) for an in-flight Ready to finish its fsync, then closes the WAL. */
  async closeLog(): Promise<void> {
    for (let i = 0; i < 200 && this.#pumping; i++) await this.#opts.clock.sleep(5);
    await this.#durable.close().catch(() => {});
  }
}
