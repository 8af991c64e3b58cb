/**
 * The Raft consensus core: a deterministic state machine driven by `tick`, `step` and
 * proposals, that hands its outputs to the driver through `ready`/`advance`.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import { type Logger, nullLogger } from "../../common/log.ts";
import { decodeConfChange, encodeConfChange, RaftCodecError } from "./codec.ts";
import { Progress } from "./progress.ts";
import { assert, RaftLog } from "./raft_log.ts";
import { cloneConf, type RaftStorage } from "./storage.ts";
import { decideVote } from "./vote.ts";
import type {
  AppendMsg,
  AppendRespMsg,
  ConfChange,
  ConfState,
  Entry,
  HardState,
  HeartbeatMsg,
  HeartbeatRespMsg,
  Message,
  ProposeResult,
  RaftStatus,
  ReadFailure,
  ReadState,
  Ready,
  Role,
  SnapshotMsg,
  SoftState,
  VoteDecision,
  VoteMsg,
  VoteReason,
} from "./types.ts";

/** Configuration of one Raft node. */
export interface RaftConfig {
  /** This node's id. */
  id: NodeId;
  /** Base election timeout in ticks; the effective one is drawn from [e, 2e). */
  electionTicks: number;
  /** Heartbeat interval in ticks; must be smaller than `electionTicks`. */
  heartbeatTicks: number;
  /** Run a pre-vote round before bumping the term. */
  preVote: boolean;
  /** Leaders step down without a live quorum; followers ignore votes while they have a leader. */
  checkQuorum: boolean;
  /** Appends in flight per follower in replicate state. */
  maxInflightMsgs: number;
  /** Entries per append message. */
  maxEntriesPerMsg: number;
  /** Seeded generator in [0,1): the only source of randomness. */
  random: () => number;
  /** Stable storage (the driver appends to it after persisting each Ready). */
  storage: RaftStorage;
  /** Logger for state transitions. @default nullLogger */
  logger?: Logger;
  /** Proposals are refused while this many entries are uncommitted. @default 4096 */
  maxUncommittedEntries?: number;
  /** Committed entries handed out per Ready. @default 1024 */
  maxCommittedPerReady?: number;
  /** Read-index requests queued on the leader. @default 4096 */
  maxPendingReads?: number;
  /** A learner may be promoted only within this many entries of the leader's log. @default maxEntriesPerMsg */
  promoteLagEntriesMax?: number;
  /**
   * Broadcast appends for proposals and commit advances once per Ready instead of once per
   * event: every proposal made (and every acknowledgement received) between two Readies then
   * travels in one append per follower. Nothing leaves before the next Ready anyway, so only
   * the number of messages changes. Off by default so the interaction transcripts keep one
   * append per event; the control node turns it on. @default false
   */
  coalesceAppends?: boolean;
  /**
   * A follower whose leader goes quiet times out after `electionTicks + 2 × rank` instead of a
   * random timeout in [e, 2e), where `rank` is its place among the other voters (sorted, the
   * leader left out). The first to time out is then known and the next two ticks behind, so
   * replacing a lost leader takes one election timeout, not the smaller of several random ones,
   * and two followers never start together. Only that first timeout is ranked: a node without a
   * leader (after a failed election) draws random ones as usual. Timing only; safety never
   * depends on it. @default false
   */
  rankedTimeouts?: boolean;
}

/** Ticks between the ranked timeouts of two followers (see `rankedTimeouts`). */
export const RANK_STAGGER_TICKS = 2;

type _ReadRequest = { ctx: string; index: number; from: NodeId; acks: Set<NodeId> };

function _sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A Raft node modelled on etcd-io/raft: no I/O, no clocks, no ambient randomness. */
export class RaftNode {
  /** This node's id. */
  readonly id: NodeId;
  readonly #cfg: Required<Omit<RaftConfig, "logger">>;
  readonly #log: Logger;
  readonly #raftLog: RaftLog;

  #term = 0;
  #vote: NodeId | null = null;
  #lead: NodeId | null = null;
  #role: Role = "follower";
  #voters: NodeId[] = [];
  #learners: NodeId[] = [];
  /** Conf entries at or below this index are already reflected in the membership. */
  #confAppliedThrough = 0;
  /** Membership after each applied conf change, so compaction can record the right one. */
  #confHistory: { index: number; conf: ConfState }[] = [];
  #progress = new Map<NodeId, Progress>();
  #votes = new Map<NodeId, boolean>();
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #ticks = 0;
  #leadTransferee: NodeId | null = null;
  #pendingConfIndex = 0;
  #reads = new Map<string, _ReadRequest>();
  #readQueue: string[] = [];
  /** Reads received before this leader committed an entry of its own term. */
  #deferredReads: { ctx: string; from: NodeId }[] = [];

  #msgs: Message[] = [];
  /** A broadcast of appends is owed at the next Ready (see `coalesceAppends`). */
  #bcastOwed = false;
  #readStates: ReadState[] = [];
  #readFailures: ReadFailure[] = [];
  #voteDecisions: VoteDecision[] = [];
  /**
   * Pre-votes that arrived while this follower still heard its leader, answered the tick its
   * lease ends. Dropping them instead left the first node to time out a pre-candidate until its
   * next timeout whenever a peer's lease outlived its own by a tick, and the election went to
   * whichever node timed out second, up to an election timeout later.
   */
  #deferredPreVotes = new Map<NodeId, VoteMsg>();
  #prevSoft: SoftState;
  #prevHard: HardState;
  /** What the last Ready handed out, for advance(). */
  #pending: { lastIndex: number; lastTerm: number; snapIndex: number; applying: number } | null =
    null;

  /** Creates a node from the state in `cfg.storage`. */
  constructor(cfg: RaftConfig) {
    assert(cfg.heartbeatTicks > 0, () => `heartbeatTicks ${cfg.heartbeatTicks} must be > 0`);
    assert(
      cfg.electionTicks > cfg.heartbeatTicks,
      () => `electionTicks ${cfg.electionTicks} must exceed heartbeatTicks ${cfg.heartbeatTicks}`,
    );
    assert(cfg.maxInflightMsgs > 0, () => `maxInflightMsgs ${cfg.maxInflightMsgs} must be > 0`);
    assert(cfg.maxEntriesPerMsg > 0, () => `maxEntriesPerMsg ${cfg.maxEntriesPerMsg} must be > 0`);
    this.id = cfg.id;
    this.#cfg = {
      id: cfg.id,
      electionTicks: cfg.electionTicks,
      heartbeatTicks: cfg.heartbeatTicks,
      preVote: cfg.preVote,
      checkQuorum: cfg.checkQuorum,
      maxInflightMsgs: cfg.maxInflightMsgs,
      maxEntriesPerMsg: cfg.maxEntriesPerMsg,
      random: cfg.random,
      storage: cfg.storage,
      maxUncommittedEntries: cfg.maxUncommittedEntries ?? 4096,
      maxCommittedPerReady: cfg.maxCommittedPerReady ?? 1024,
      maxPendingReads: cfg.maxPendingReads ?? 4096,
      promoteLagEntriesMax: cfg.promoteLagEntriesMax ?? cfg.maxEntriesPerMsg,
      coalesceAppends: cfg.coalesceAppends ?? false,
      rankedTimeouts: cfg.rankedTimeouts ?? false,
    };
    this.#log = (cfg.logger ?? nullLogger).with({ raft_node: cfg.id });
    const { hardState, conf } = cfg.storage.initialState();
    this.#raftLog = new RaftLog(cfg.storage, hardState.commit);
    const snap = cfg.storage.snapshot();
    this.#setConf(conf);
    this.#confAppliedThrough = snap.meta.index;
    this.#confHistory = [{ index: snap.meta.index, conf: cloneConf(conf) }];
    // Committed conf changes after the snapshot are re-applied now, so a restarted node
    // never campaigns or counts votes with a membership older than what it committed.
    this.#applyConfEntriesThrough(this.#raftLog.committed);
    this.#term = Math.max(hardState.term, snap.meta.term);
    this.#vote = hardState.vote;
    this.#becomeFollower(this.#term, null);
    this.#prevHard = this.#hardState();
    this.#prevSoft = this.#softState();
    this.#log.debug("raft node started", {
      term: this.#term,
      commit: this.#raftLog.committed,
      last_index: this.#raftLog.lastIndex(),
      voters: this.#voters.join(","),
    });
  }

  // ---------------------------------------------------------------- public API

  /** Advances logical time by one tick. */
  tick(): void {
    this.#ticks++;
    if (this.#role === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void {
    this.#hup(false);
  }

  /** Feeds one message from a peer. Stale or malformed messages are dropped, never thrown. */
  step(m: Message): void {
    if (m.to !== this.id) {
      this.#log.warn("raft: dropping message addressed to another node", { to: m.to });
      return;
    }
    if (!Number.isSafeInteger(m.term) || m.term < 0) return;
    if (m.term > this.#term) {
      if (m.type === "vote" || m.type === "pre_vote") {
        const inLease = this.#cfg.checkQuorum && this.#lead !== null &&
          this.#electionElapsed < this.#cfg.electionTicks;
        if (!m.transfer && inLease) {
          // A node cut off from the leader must not depose it while it is still live.
          const defer = m.type === "pre_vote" && this.#role === "follower" &&
            this.#voters.includes(m.from);
          if (defer) this.#deferredPreVotes.set(m.from, m);
          this.#decided(m, defer ? "deferred" : "refused", "in_lease");
          return;
        }
      }
      if (m.type === "pre_vote") {
        // Pre-votes never change our term.
      } else if (m.type === "pre_vote_resp" && !m.reject) {
        // A granted pre-vote carries the term we would campaign in.
      } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
        this.#becomeFollower(m.term, m.from);
      } else {
        this.#becomeFollower(m.term, null);
      }
    } else if (m.term < this.#term) {
      if (
        (this.#cfg.checkQuorum || this.#cfg.preVote) &&
        (m.type === "app" || m.type === "heartbeat")
      ) {
        // A stale leader would otherwise never learn about the newer term.
        this.#send({
          type: "app_resp",
          from: this.id,
          to: m.from,
          term: this.#term,
          index: 0,
          reject: false,
          rejectHint: 0,
          logTerm: 0,
        });
      } else if (m.type === "pre_vote" || m.type === "vote") {
        this.#decided(m, "refused", "stale_term");
        if (m.type === "vote") return;
        this.#send({
          type: "pre_vote_resp",
          from: this.id,
          to: m.from,
          term: this.#term,
          reject: true,
        });
      } else if (m.type === "read_index") {
        this.#rejectReadIndex(m);
      }
      return;
    }

    if (m.type === "vote" || m.type === "pre_vote") {
      this.#handleVoteRequest(m);
      return;
    }
    switch (this.#role) {
      case "leader":
        this.#stepLeader(m);
        break;
      case "candidate":
      case "pre_candidate":
        this.#stepCandidate(m);
        break;
      case "follower":
        this.#stepFollower(m);
        break;
    }
  }

  /** Proposes application data; only the leader accepts. */
  propose(data: Uint8Array): ProposeResult {
    const refused = this.#refuseProposal();
    if (refused) return refused;
    return this.#appendProposal("normal", data);
  }

  /** Proposes a single-server membership change; one may be pending at a time. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    const refused = this.#refuseProposal();
    if (refused) return refused;
    if (this.#pendingConfIndex > this.#raftLog.applied) {
      return {
        ok: false,
        reason: "conf_change_pending",
        detail:
          `conf change at index ${this.#pendingConfIndex} is not applied yet (applied ${this.#raftLog.applied})`,
      };
    }
    const isVoter = this.#voters.includes(cc.node);
    const isLearner = this.#learners.includes(cc.node);
    switch (cc.op) {
      case "add_learner":
        if (isVoter || isLearner) {
          return {
            ok: false,
            reason: "invalid_conf_change",
            detail: `${cc.node} is already a member`,
          };
        }
        break;
      case "promote": {
        if (!isLearner) {
          return {
            ok: false,
            reason: "invalid_conf_change",
            detail: `${cc.node} is not a learner`,
          };
        }
        const pr = this.#progress.get(cc.node);
        const lag = this.#raftLog.lastIndex() - (pr?.match ?? 0);
        if (!pr || pr.state !== "replicate" || lag > this.#cfg.promoteLagEntriesMax) {
          return {
            ok: false,
            reason: "learner_behind",
            detail:
              `learner ${cc.node} is ${lag} entries behind (state ${pr?.state}), limit ${this.#cfg.promoteLagEntriesMax}`,
          };
        }
        break;
      }
      case "remove":
        if (!isVoter && !isLearner) {
          return { ok: false, reason: "invalid_conf_change", detail: `${cc.node} is not a member` };
        }
        if (isVoter && this.#voters.length === 1) {
          return {
            ok: false,
            reason: "invalid_conf_change",
            detail: `cannot remove the last voter ${cc.node}`,
          };
        }
        break;
    }
    const r = this.#appendProposal("conf", encodeConfChange(cc));
    if (r.ok) this.#pendingConfIndex = r.index;
    return r;
  }

  /** Asks for leadership to move to `to`; a follower forwards the request to its leader. */
  transferLeadership(to: NodeId): void {
    if (this.#role === "leader") {
      this.#handleTransfer(to);
    } else if (this.#lead !== null) {
      this.#send({
        type: "transfer_leader",
        from: this.id,
        to: this.#lead,
        term: this.#term,
        target: to,
      });
    } else {
      this.#log.info("raft: cannot transfer leadership: no leader known", { target: to });
    }
  }

  /** Requests a linearizable read index; the answer is a ReadState or ReadFailure later. */
  readIndex(ctx: string): void {
    if (this.#role === "leader") {
      this.#leaderReadIndex(ctx, this.id);
    } else if (this.#role === "follower" && this.#lead !== null) {
      this.#send({ type: "read_index", from: this.id, to: this.#lead, term: this.#term, ctx });
    } else {
      this.#readFailures.push({ ctx, reason: "no_leader" });
    }
  }

  /** Tells the leader a snapshot send to `to` finished (or failed), to resume replication. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.#progress.get(to);
    if (this.#role !== "leader" || !pr || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or a heartbeat answer) before probing again.
    pr.probeSent = true;
  }

  /** Whether `ready()` has anything to hand out. */
  hasReady(): boolean {
    const l = this.#raftLog;
    if (this.#bcastOwed && this.#role === "leader") return true;
    if (
      this.#msgs.length > 0 || this.#readStates.length > 0 || this.#readFailures.length > 0 ||
      this.#voteDecisions.length > 0
    ) {
      return true;
    }
    if (l.unstable.entries.length > 0 || l.unstable.snapshot) return true;
    if (l.committed > l.applying) return true;
    const soft = this.#softState();
    if (soft.role !== this.#prevSoft.role || soft.leader !== this.#prevSoft.leader) return true;
    const hs = this.#hardState();
    return !_sameHard(hs, this.#prevHard);
  }

  /** Collects what the driver must persist, send and apply, in that order. */
  ready(): Ready {
    const l = this.#raftLog;
    this.#flushBcast();
    const rd: Ready = {
      entries: [...l.unstable.entries],
      messages: this.#msgs,
      committedEntries: [],
      readStates: this.#readStates,
      readFailures: this.#readFailures,
      voteDecisions: this.#voteDecisions,
    };
    this.#msgs = [];
    this.#readStates = [];
    this.#readFailures = [];
    this.#voteDecisions = [];
    const soft = this.#softState();
    if (soft.role !== this.#prevSoft.role || soft.leader !== this.#prevSoft.leader) {
      rd.softState = soft;
      this.#prevSoft = soft;
    }
    const hs = this.#hardState();
    if (!_sameHard(hs, this.#prevHard)) {
      rd.hardState = hs;
      this.#prevHard = hs;
    }
    const snap = l.unstable.snapshot;
    if (snap) rd.snapshot = snap;
    const lo = l.applying + 1;
    const hi = Math.min(l.committed, l.applying + this.#cfg.maxCommittedPerReady);
    if (hi >= lo) {
      const ents = l.slice(lo, hi + 1, hi + 1 - lo);
      assert(ents !== undefined, () => `committed entries ${lo}..${hi} are compacted`);
      rd.committedEntries = ents;
      l.applying = lo + ents.length - 1;
    }
    const last = rd.entries[rd.entries.length - 1];
    this.#pending = {
      lastIndex: last?.index ?? 0,
      lastTerm: last?.term ?? 0,
      snapIndex: snap?.meta.index ?? 0,
      applying: l.applying,
    };
    return rd;
  }

  /** The driver has persisted, sent and applied the last Ready. */
  advance(): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = null;
    const l = this.#raftLog;
    if (p.snapIndex > 0) {
      l.stableSnapTo(p.snapIndex);
      l.applied = Math.max(l.applied, p.snapIndex);
    }
    if (p.lastIndex > 0) l.stableTo(p.lastIndex, p.lastTerm);
    if (p.applying > l.applied) {
      this.#applyConfEntriesThrough(p.applying);
      l.applied = p.applying;
    }
    if (this.#role === "leader") this.#releaseDeferredReads();
  }

  /**
   * Records an application snapshot at `index` in storage and drops earlier entries.
   * `data` must be the state machine as of exactly `index`. `index` may be any entry
   * already handed out for applying, including those of the Ready being handled (note that
   * `status().applied` only moves at `advance()`).
   */
  compact(index: number, data: Uint8Array): void {
    const l = this.#raftLog;
    assert(
      index <= l.applying,
      () => `compact(${index}) is past the last entry handed out for applying (${l.applying})`,
    );
    if (index <= l.storage.firstIndex() - 1) return;
    assert(
      index <= l.storage.lastIndex(),
      () => `compact(${index}) is past the stored last index ${l.storage.lastIndex()}`,
    );
    // Conf entries handed out but not yet advanced are not in the history yet.
    this.#applyConfEntriesThrough(index);
    let conf = this.#confHistory[0]!.conf;
    for (const h of this.#confHistory) if (h.index <= index) conf = h.conf;
    l.storage.compact(index, data, cloneConf(conf));
    // Keep the entry in force at `index` and everything after it.
    let keep = 0;
    for (let i = 0; i < this.#confHistory.length; i++) {
      if (this.#confHistory[i]!.index <= index) keep = i;
    }
    this.#confHistory = this.#confHistory.slice(keep);
  }

  /** A read-only view of this node's state. */
  status(): RaftStatus {
    const l = this.#raftLog;
    const st: RaftStatus = {
      id: this.id,
      term: this.#term,
      vote: this.#vote,
      role: this.#role,
      leader: this.#lead,
      commit: l.committed,
      applied: l.applied,
      lastIndex: l.lastIndex(),
      firstIndex: l.firstIndex(),
      conf: { voters: [...this.#voters], learners: [...this.#learners] },
      leadTransferee: this.#leadTransferee,
    };
    if (this.#role === "leader") {
      st.progress = {};
      for (const id of _sortedIds(this.#progress.keys())) {
        st.progress[id] = this.#progress.get(id)!.toStatus();
      }
    }
    return st;
  }

  /** Term of log entry `i`, or undefined when compacted or absent (for tests and tools). */
  termAt(i: number): number | undefined {
    return this.#raftLog.term(i);
  }

  // ---------------------------------------------------------------- roles

  #softState(): SoftState {
    return { leader: this.#lead, role: this.#role };
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#raftLog.committed };
  }

  #promotable(): boolean {
    return this.#voters.includes(this.id);
  }

  #reset(term: number): void {
    if (this.#term !== term) {
      this.#term = term;
      this.#vote = null;
    }
    this.#lead = null;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#cfg.electionTicks +
      Math.floor(this.#cfg.random() * this.#cfg.electionTicks);
    this.#leadTransferee = null;
    this.#votes.clear();
    this.#deferredPreVotes.clear();
    this.#failPendingReads();
    const last = this.#raftLog.lastIndex();
    this.#progress.clear();
    for (const v of this.#voters) {
      this.#progress.set(v, new Progress(last + 1, this.#cfg.maxInflightMsgs, false));
    }
    for (const v of this.#learners) {
      this.#progress.set(v, new Progress(last + 1, this.#cfg.maxInflightMsgs, true));
    }
    const self = this.#progress.get(this.id);
    if (self) self.match = last;
    this.#pendingConfIndex = 0;
  }

  #becomeFollower(term: number, lead: NodeId | null): void {
    this.#reset(term);
    this.#lead = lead;
    this.#role = "follower";
  }

  #becomePreCandidate(): void {
    assert(this.#role !== "leader", () => "leader cannot become pre-candidate");
    // Term and vote stay: a pre-vote round must not disturb anything if it fails.
    this.#votes.clear();
    this.#failPendingReads();
    this.#lead = null;
    this.#role = "pre_candidate";
  }

  #becomeCandidate(): void {
    assert(this.#role !== "leader", () => "leader cannot become candidate");
    this.#reset(this.#term + 1);
    this.#vote = this.id;
    this.#role = "candidate";
  }

  #becomeLeader(): void {
    assert(
      this.#role === "candidate",
      () => `only a candidate can become leader, was ${this.#role}`,
    );
    this.#reset(this.#term);
    this.#lead = this.id;
    this.#role = "leader";
    for (const pr of this.#progress.values()) pr.recentActive = true;
    // No conf change until this leader commits an entry of its own term: the known fix for
    // single-server changes racing a leader change.
    this.#pendingConfIndex = this.#raftLog.lastIndex();
    this.#appendEntries([{ term: this.#term, index: 0, type: "normal", data: new Uint8Array() }]);
    this.#log.info("raft: became leader", {
      term: this.#term,
      last_index: this.#raftLog.lastIndex(),
    });
  }

  #hup(transfer: boolean): void {
    if (this.#role === "leader" || !this.#promotable()) return;
    if (this.#hasUnappliedConf()) {
      this.#log.debug("raft: not campaigning: committed conf change not applied yet");
      return;
    }
    if (this.#cfg.preVote && !transfer) this.#campaignPre();
    else this.#campaignElection(transfer);
  }

  #hasUnappliedConf(): boolean {
    const l = this.#raftLog;
    if (l.committed <= l.applied) return false;
    const ents = l.slice(l.applied + 1, l.committed + 1, l.committed - l.applied);
    return ents?.some((e) => e.type === "conf") ?? false;
  }

  #campaignPre(): void {
    this.#becomePreCandidate();
    this.#requestVotes("pre_vote", this.#term + 1, false);
  }

  #campaignElection(transfer: boolean): void {
    this.#becomeCandidate();
    this.#requestVotes("vote", this.#term, transfer);
  }

  #requestVotes(type: "vote" | "pre_vote", term: number, transfer: boolean): void {
    this.#votes.set(this.id, true);
    if (this.#tally() === "won") {
      if (type === "pre_vote") this.#campaignElection(transfer);
      else this.#becomeLeader();
      return;
    }
    const index = this.#raftLog.lastIndex();
    const logTerm = this.#raftLog.lastTerm();
    for (const v of this.#voters) {
      if (v === this.id) continue;
      this.#send({ type, from: this.id, to: v, term, logTerm, index, transfer });
    }
  }

  #tally(): "won" | "lost" | "pending" {
    let granted = 0;
    let rejected = 0;
    for (const v of this.#voters) {
      const g = this.#votes.get(v);
      if (g === true) granted++;
      else if (g === false) rejected++;
    }
    const q = Math.floor(this.#voters.length / 2) + 1;
    if (granted >= q) return "won";
    if (rejected >= q || this.#voters.length - rejected < q) return "lost";
    return "pending";
  }

  /** Ticks after which this node campaigns (see `rankedTimeouts`). */
  #electionTimeout(): number {
    const lead = this.#lead;
    if (!this.#cfg.rankedTimeouts || this.#role !== "follower" || lead === null) {
      return this.#randomizedElectionTimeout;
    }
    const others = this.#voters.filter((v) => v !== lead).sort();
    const rank = Math.max(0, others.indexOf(this.id));
    return this.#cfg.electionTicks +
      Math.min(RANK_STAGGER_TICKS * rank, this.#cfg.electionTicks - 1);
  }

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#deferredPreVotes.size > 0 && this.#electionElapsed >= this.#cfg.electionTicks) {
      // The lease ran out with no word from the leader: answer as if they arrived now.
      const deferred = [...this.#deferredPreVotes.values()];
      this.#deferredPreVotes.clear();
      for (const m of deferred) this.step(m);
    }
    if (this.#promotable() && this.#electionElapsed >= this.#electionTimeout()) {
      this.#electionElapsed = 0;
      this.#hup(false);
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#cfg.electionTicks) {
      this.#electionElapsed = 0;
      if (this.#cfg.checkQuorum) {
        if (!this.#quorumActive()) {
          this.#log.info("raft: stepping down: no active quorum", { term: this.#term });
          this.#becomeFollower(this.#term, null);
          return;
        }
        for (const [id, pr] of this.#progress) if (id !== this.id) pr.recentActive = false;
      }
      if (this.#leadTransferee !== null) {
        this.#log.info("raft: leader transfer timed out", { target: this.#leadTransferee });
        this.#leadTransferee = null;
      }
    }
    for (const [id, pr] of this.#progress) {
      // A snapshot that got lost in the network is retried after an election timeout.
      if (
        id !== this.id && pr.state === "snapshot" &&
        this.#ticks - pr.snapshotSentTick >= this.#cfg.electionTicks
      ) {
        pr.becomeProbe();
      }
    }
    if (this.#heartbeatElapsed >= this.#cfg.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#bcastHeartbeat("");
    }
  }

  #quorumActive(): boolean {
    let active = 0;
    for (const v of this.#voters) {
      if (v === this.id || this.#progress.get(v)?.recentActive) active++;
    }
    return active >= Math.floor(this.#voters.length / 2) + 1;
  }

  // ---------------------------------------------------------------- messages

  #send(m: Message): void {
    this.#msgs.push(m);
  }

  #handleVoteRequest(m: VoteMsg): void {
    const pre = m.type === "pre_vote";
    const { grant, reason } = decideVote({
      pre,
      candidate: m.from,
      term: m.term,
      ourTerm: this.#term,
      vote: this.#vote,
      lead: this.#lead,
      logUpToDate: this.#raftLog.isUpToDate(m.index, m.logTerm),
    });
    this.#decided(m, grant ? "granted" : "refused", reason);
    const type = pre ? "pre_vote_resp" : "vote_resp";
    if (grant) {
      // The answer carries the requested term so the candidate can count it.
      this.#send({ type, from: this.id, to: m.from, term: m.term, reject: false });
      if (!pre) {
        this.#electionElapsed = 0;
        this.#vote = m.from;
      }
    } else {
      this.#send({ type, from: this.id, to: m.from, term: this.#term, reject: true });
    }
  }

  #decided(m: VoteMsg, outcome: VoteDecision["outcome"], reason: VoteReason): void {
    this.#voteDecisions.push({ type: m.type, candidate: m.from, term: m.term, outcome, reason });
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#deferredPreVotes.clear();
        this.#handleAppend(m);
        break;
      case "heartbeat":
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#deferredPreVotes.clear();
        this.#handleHeartbeat(m);
        break;
      case "snap":
        this.#electionElapsed = 0;
        this.#lead = m.from;
        this.#deferredPreVotes.clear();
        this.#handleSnapshot(m);
        break;
      case "timeout_now":
        this.#log.info("raft: leadership transfer: campaigning now", { from: m.from });
        this.#hup(true);
        break;
      case "transfer_leader":
        if (this.#lead !== null) {
          this.#send({ ...m, to: this.#lead, from: this.id, term: this.#term });
        }
        break;
      case "read_index":
        // Only a leader answers; forwarding would lose the original requester.
        this.#rejectReadIndex(m);
        break;
      case "read_index_resp":
        if (m.reject) this.#readFailures.push({ ctx: m.ctx, reason: "rejected" });
        else if (m.index >= 0 && Number.isSafeInteger(m.index)) {
          this.#readStates.push({ index: m.index, ctx: m.ctx });
        }
        break;
      default:
        break;
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case "app":
        this.#becomeFollower(m.term, m.from);
        this.#handleAppend(m);
        break;
      case "heartbeat":
        this.#becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        break;
      case "snap":
        this.#becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        break;
      case "vote_resp":
      case "pre_vote_resp": {
        const mine = this.#role === "pre_candidate" ? "pre_vote_resp" : "vote_resp";
        if (m.type !== mine || !this.#voters.includes(m.from)) break;
        if (!this.#votes.has(m.from)) this.#votes.set(m.from, !m.reject);
        const r = this.#tally();
        if (r === "won") {
          if (this.#role === "pre_candidate") this.#campaignElection(false);
          else {
            this.#becomeLeader();
            this.#bcastAppend();
          }
        } else if (r === "lost") {
          this.#becomeFollower(this.#term, null);
        }
        break;
      }
      case "read_index":
        this.#rejectReadIndex(m);
        break;
      default:
        break;
    }
  }

  #rejectReadIndex(m: Extract<Message, { type: "read_index" }>): void {
    this.#send({
      type: "read_index_resp",
      from: this.id,
      to: m.from,
      term: this.#term,
      ctx: m.ctx,
      index: 0,
      reject: true,
    });
  }

  #stepLeader(m: Message): void {
    const pr = this.#progress.get(m.from);
    switch (m.type) {
      case "app_resp":
        // An acknowledgement past our own log cannot be genuine.
        if (pr && Number.isSafeInteger(m.index) && m.index <= this.#raftLog.lastIndex()) {
          this.#handleAppendResp(m, pr);
        }
        break;
      case "heartbeat_resp":
        if (pr) this.#handleHeartbeatResp(m, pr);
        break;
      case "transfer_leader":
        if (pr) this.#handleTransfer(m.target);
        break;
      case "read_index":
        if (pr) this.#leaderReadIndex(m.ctx, m.from);
        break;
      default:
        break;
    }
  }

  #validAppend(m: AppendMsg): boolean {
    if (!Number.isSafeInteger(m.index) || m.index < 0 || !Number.isSafeInteger(m.commit)) {
      return false;
    }
    let prevTerm = m.logTerm;
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      if (e.index !== m.index + 1 + i || e.term < prevTerm || e.term > m.term) return false;
      prevTerm = e.term;
    }
    return m.logTerm <= m.term;
  }

  #handleAppend(m: AppendMsg): void {
    const l = this.#raftLog;
    if (!this.#validAppend(m)) {
      this.#log.warn("raft: dropping malformed append", { from: m.from, index: m.index });
      return;
    }
    const resp = (index: number, reject: boolean, hint = 0, hintTerm = 0): void =>
      this.#send({
        type: "app_resp",
        from: this.id,
        to: m.from,
        term: this.#term,
        index,
        reject,
        rejectHint: hint,
        logTerm: hintTerm,
      });
    if (m.index < l.committed) {
      resp(l.committed, false);
      return;
    }
    const last = l.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      resp(last, false);
      return;
    }
    const hint = l.findConflictByTerm(Math.min(m.index, l.lastIndex()), m.logTerm);
    resp(m.index, true, hint.index, hint.term);
  }

  #handleHeartbeat(m: HeartbeatMsg): void {
    const l = this.#raftLog;
    if (Number.isSafeInteger(m.commit) && m.commit <= l.lastIndex()) l.commitTo(m.commit);
    this.#send({ type: "heartbeat_resp", from: this.id, to: m.from, term: this.#term, ctx: m.ctx });
  }

  #handleSnapshot(m: SnapshotMsg): void {
    const l = this.#raftLog;
    const s = m.snapshot;
    const resp = (index: number): void =>
      this.#send({
        type: "app_resp",
        from: this.id,
        to: m.from,
        term: this.#term,
        index,
        reject: false,
        rejectHint: 0,
        logTerm: 0,
      });
    if (
      !Number.isSafeInteger(s.meta.index) || s.meta.term > m.term || s.meta.conf.voters.length === 0
    ) {
      this.#log.warn("raft: dropping malformed snapshot", { from: m.from, index: s.meta.index });
      return;
    }
    if (s.meta.index <= l.committed) {
      resp(l.committed);
      return;
    }
    if (l.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold that entry: just fast-forward the commit.
      l.commitTo(s.meta.index);
      resp(l.committed);
      return;
    }
    this.#log.info("raft: restoring snapshot", {
      index: s.meta.index,
      term: s.meta.term,
      from: m.from,
    });
    l.restore(s);
    this.#setConf(s.meta.conf);
    this.#confAppliedThrough = s.meta.index;
    this.#confHistory = [{ index: s.meta.index, conf: cloneConf(s.meta.conf) }];
    resp(l.lastIndex());
  }

  #handleAppendResp(m: AppendRespMsg, pr: Progress): void {
    const l = this.#raftLog;
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = l.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.#sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (oldPaused && !pr.isPaused()) this.#sendAppend(m.from);
      return;
    }
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
    else if (pr.state === "replicate") pr.inflights.freeLE(m.index);
    if (this.#maybeCommit()) {
      this.#owedBcast();
    } else {
      // A follower that was paused may have missed commit updates.
      if (oldPaused) this.#sendAppend(m.from, true);
      while (this.#sendAppend(m.from)) {
        // Keep the pipeline full up to the in-flight bound.
      }
    }
    if (m.from === this.#leadTransferee && pr.match === l.lastIndex()) {
      this.#sendTimeoutNow(m.from);
    }
  }

  #handleHeartbeatResp(m: HeartbeatRespMsg, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
    // If nothing is left to send, an empty append (as etcd does, but at most one per follower
    // and tick): had the entries sent last been lost, the follower refuses its previous index
    // and the leader backs off and resends. Without it a follower that lost the last append
    // stayed behind until the next write.
    if (pr.match < this.#raftLog.lastIndex() && !this.#sendAppend(m.from)) {
      if (pr.emptyProbeTick !== this.#ticks) {
        pr.emptyProbeTick = this.#ticks;
        this.#sendAppend(m.from, true);
      }
    }
    if (m.ctx === "") return;
    const req = this.#reads.get(m.ctx);
    if (!req) return;
    if (this.#voters.includes(m.from)) req.acks.add(m.from);
    if (!this.#hasQuorum(req.acks)) return;
    // Every request queued before this one is confirmed by the same round.
    while (this.#readQueue.length > 0) {
      const ctx = this.#readQueue.shift()!;
      const r = this.#reads.get(ctx)!;
      this.#reads.delete(ctx);
      this.#answerRead(r.ctx, r.index, r.from);
      if (ctx === m.ctx) break;
    }
  }

  #hasQuorum(acks: Set<NodeId>): boolean {
    let n = 0;
    for (const v of this.#voters) if (acks.has(v)) n++;
    return n >= Math.floor(this.#voters.length / 2) + 1;
  }

  // ---------------------------------------------------------------- replication

  #refuseProposal(): ProposeResult | undefined {
    if (this.#role !== "leader") return { ok: false, reason: "not_leader", leader: this.#lead };
    if (this.#leadTransferee !== null) {
      return { ok: false, reason: "transferring", leader: this.id };
    }
    const uncommitted = this.#raftLog.lastIndex() - this.#raftLog.committed;
    if (uncommitted >= this.#cfg.maxUncommittedEntries) return { ok: false, reason: "overloaded" };
    return undefined;
  }

  #appendProposal(type: Entry["type"], data: Uint8Array): ProposeResult {
    const e: Entry = { term: this.#term, index: 0, type, data };
    const last = this.#appendEntries([e]);
    this.#owedBcast();
    return { ok: true, index: last, term: this.#term };
  }

  #appendEntries(ents: Entry[]): number {
    const l = this.#raftLog;
    let idx = l.lastIndex();
    const withIdx = ents.map((e) => ({ ...e, term: this.#term, index: ++idx }));
    const last = l.append(withIdx);
    this.#progress.get(this.id)?.maybeUpdate(last);
    // A single-voter cluster commits on its own.
    this.#maybeCommit();
    return last;
  }

  #maybeCommit(): boolean {
    const matches = this.#voters.map((v) => this.#progress.get(v)?.match ?? 0).sort((a, b) =>
      b - a
    );
    if (matches.length === 0) return false;
    const q = Math.floor(matches.length / 2) + 1;
    const mci = matches[q - 1]!;
    const l = this.#raftLog;
    // Only an entry of the current term is committed by counting replicas (Raft §5.4.2).
    if (mci > l.committed && l.term(mci) === this.#term) {
      l.commitTo(mci);
      return true;
    }
    return false;
  }

  #peers(): NodeId[] {
    return _sortedIds(this.#progress.keys()).filter((id) => id !== this.id);
  }

  #bcastAppend(): void {
    // Empty appends too: they carry the new commit index.
    for (const id of this.#peers()) this.#sendAppend(id, true);
  }

  /** Broadcasts now, or at the next Ready when appends are coalesced. */
  #owedBcast(): void {
    if (this.#cfg.coalesceAppends) this.#bcastOwed = true;
    else this.#bcastAppend();
  }

  #flushBcast(): void {
    if (!this.#bcastOwed) return;
    this.#bcastOwed = false;
    // A node that stepped down since owes nothing: its successor replicates.
    if (this.#role === "leader") this.#bcastAppend();
  }

  #bcastHeartbeat(ctx: string): void {
    for (const id of this.#peers()) {
      const pr = this.#progress.get(id)!;
      this.#send({
        type: "heartbeat",
        from: this.id,
        to: id,
        term: this.#term,
        commit: Math.min(pr.match, this.#raftLog.committed),
        ctx,
      });
    }
  }

  /** Sends the next append (or snapshot) to `to`; returns whether anything was sent. */
  #sendAppend(to: NodeId, sendIfEmpty = false): boolean {
    const pr = this.#progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const l = this.#raftLog;
    const prevIndex = pr.next - 1;
    const prevTerm = l.term(prevIndex);
    const ents = prevTerm === undefined
      ? undefined
      : l.slice(pr.next, l.lastIndex() + 1, this.#cfg.maxEntriesPerMsg);
    if (prevTerm === undefined || ents === undefined) {
      const snap = l.snapshot();
      if (snap.meta.index === 0) return false;
      pr.becomeSnapshot(snap.meta.index, this.#ticks);
      this.#log.info("raft: sending snapshot", { to, index: snap.meta.index });
      this.#send({ type: "snap", from: this.id, to, term: this.#term, snapshot: snap });
      return true;
    }
    if (ents.length === 0 && pr.state === "replicate" && !sendIfEmpty) return false;
    this.#send({
      type: "app",
      from: this.id,
      to,
      term: this.#term,
      logTerm: prevTerm,
      index: prevIndex,
      entries: ents,
      commit: l.committed,
    });
    if (ents.length > 0 && pr.state === "replicate") {
      const last = ents[ents.length - 1]!.index;
      pr.next = last + 1;
      pr.inflights.add(last);
    } else if (pr.state === "probe") {
      pr.probeSent = true;
    }
    return true;
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#send({ type: "timeout_now", from: this.id, to, term: this.#term });
  }

  #handleTransfer(to: NodeId): void {
    if (to === this.id) return;
    if (!this.#voters.includes(to)) {
      this.#log.info("raft: ignoring leader transfer to a non-voter", { target: to });
      return;
    }
    if (this.#leadTransferee === to) return;
    this.#leadTransferee = to;
    // The transfer must finish within one election timeout or it is abandoned.
    this.#electionElapsed = 0;
    const pr = this.#progress.get(to)!;
    if (pr.match === this.#raftLog.lastIndex()) this.#sendTimeoutNow(to);
    else this.#sendAppend(to);
  }

  // ---------------------------------------------------------------- read index

  #committedInTerm(): boolean {
    return this.#raftLog.term(this.#raftLog.committed) === this.#term;
  }

  #leaderReadIndex(ctx: string, from: NodeId): void {
    if (this.#reads.size + this.#deferredReads.length >= this.#cfg.maxPendingReads) {
      this.#failRead(ctx, from, "overloaded");
      return;
    }
    if (!this.#committedInTerm()) {
      // The commit index of a fresh leader may lag the true one until it commits its no-op.
      this.#deferredReads.push({ ctx, from });
      return;
    }
    const index = this.#raftLog.committed;
    if (this.#voters.length === 1) {
      this.#answerRead(ctx, index, from);
      return;
    }
    if (this.#reads.has(ctx)) return;
    this.#reads.set(ctx, { ctx, index, from, acks: new Set([this.id]) });
    this.#readQueue.push(ctx);
    this.#bcastHeartbeat(ctx);
  }

  #releaseDeferredReads(): void {
    if (this.#deferredReads.length === 0 || !this.#committedInTerm()) return;
    const d = this.#deferredReads;
    this.#deferredReads = [];
    for (const r of d) this.#leaderReadIndex(r.ctx, r.from);
  }

  #answerRead(ctx: string, index: number, from: NodeId): void {
    if (from === this.id) this.#readStates.push({ index, ctx });
    else {
      this.#send({
        type: "read_index_resp",
        from: this.id,
        to: from,
        term: this.#term,
        ctx,
        index,
        reject: false,
      });
    }
  }

  #failRead(ctx: string, from: NodeId, reason: ReadFailure["reason"]): void {
    if (from === this.id) this.#readFailures.push({ ctx, reason });
    else {
      this.#send({
        type: "read_index_resp",
        from: this.id,
        to: from,
        term: this.#term,
        ctx,
        index: 0,
        reject: true,
      });
    }
  }

  #failPendingReads(): void {
    for (const r of this.#reads.values()) this.#failRead(r.ctx, r.from, "stepped_down");
    for (const r of this.#deferredReads) this.#failRead(r.ctx, r.from, "stepped_down");
    this.#reads.clear();
    this.#readQueue = [];
    this.#deferredReads = [];
  }

  // ---------------------------------------------------------------- membership

  #setConf(c: ConfState): void {
    this.#voters = _sortedIds(c.voters);
    this.#learners = _sortedIds(c.learners).filter((l) => !this.#voters.includes(l));
  }

  #applyConfEntriesThrough(index: number): void {
    const from = this.#confAppliedThrough + 1;
    if (index < from) return;
    const l = this.#raftLog;
    for (let lo = from; lo <= index;) {
      const ents = l.slice(lo, index + 1, this.#cfg.maxCommittedPerReady);
      assert(ents !== undefined && ents.length > 0, () => `entries ${lo}..${index} unavailable`);
      for (const e of ents) if (e.type === "conf") this.#applyConfEntry(e);
      lo += ents.length;
    }
    this.#confAppliedThrough = index;
  }

  #applyConfEntry(e: Entry): void {
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch (err) {
      if (err instanceof RaftCodecError) {
        // Committed bytes are what they are; a bad one is skipped identically on every node.
        this.#log.error("raft: skipping undecodable conf entry", { index: e.index, error: err });
        return;
      }
      throw err;
    }
    const voters = new Set(this.#voters);
    const learners = new Set(this.#learners);
    switch (cc.op) {
      case "add_learner":
        if (!voters.has(cc.node)) learners.add(cc.node);
        break;
      case "promote":
        if (learners.delete(cc.node)) voters.add(cc.node);
        break;
      case "remove":
        voters.delete(cc.node);
        learners.delete(cc.node);
        break;
    }
    if (voters.size === 0) {
      this.#log.error("raft: ignoring conf change that would leave no voters", { index: e.index });
      return;
    }
    this.#setConf({ voters: [...voters], learners: [...learners] });
    this.#confHistory.push({
      index: e.index,
      conf: { voters: [...this.#voters], learners: [...this.#learners] },
    });
    this.#log.info("raft: applied conf change", { index: e.index, op: cc.op, node: cc.node });
    if (this.#role !== "leader") return;
    const last = this.#raftLog.lastIndex();
    for (const v of this.#voters) {
      const pr = this.#progress.get(v);
      if (pr) pr.learner = false;
      else this.#progress.set(v, new Progress(last + 1, this.#cfg.maxInflightMsgs, false));
    }
    for (const v of this.#learners) {
      if (!this.#progress.has(v)) {
        const pr = new Progress(last + 1, this.#cfg.maxInflightMsgs, true);
        pr.recentActive = true;
        this.#progress.set(v, pr);
      }
    }
    for (const id of [...this.#progress.keys()]) {
      if (!voters.has(id) && !learners.has(id)) this.#progress.delete(id);
    }
    if (this.#leadTransferee !== null && !voters.has(this.#leadTransferee)) {
      this.#leadTransferee = null;
    }
    if (!voters.has(this.id)) {
      this.#log.info("raft: removed from the cluster: stepping down", { term: this.#term });
      this.#becomeFollower(this.#term, null);
      return;
    }
    if (this.#maybeCommit()) this.#bcastAppend();
    else for (const id of this.#peers()) this.#sendAppend(id);
  }
}

function _sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
