/**
 * The Raft consensus core: a deterministic state machine driven by `tick`, `step` and
 * proposals, that hands its outputs to the driver through `ready`/`advance`.
 *
 * {@linkcode RaftNode} is the façade: its public methods are the whole API, and the Ready /
 * advance / compaction bookkeeping lives here. The protocol itself is split by concern over
 * modules that share one {@linkcode RaftState}: `election.ts`, `replication.ts`,
 * `follower.ts`, `read_index.ts`, `membership.ts`, `step.ts` (message dispatch) and `tick.ts`.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import { nullLogger } from "../../common/log.ts";
import type { RaftConfig, ResolvedRaftConfig } from "./config.ts";
import { assert, RaftLog } from "./raft_log.ts";
import { cloneConf } from "./storage.ts";
import {
  hardState,
  RaftState,
  sameHard,
  send,
  setConf,
  softState,
  sortedIds,
} from "./raft_state.ts";
import { appendProposal, flushBcast, handleTransfer, refuseProposal } from "./replication.ts";
import { leaderReadIndex, releaseDeferredReads } from "./read_index.ts";
import { becomeFollower, hup } from "./election.ts";
import { applyConfEntriesThrough, proposeConfChange } from "./membership.ts";
import { stepMessage } from "./step.ts";
import { tickElection, tickHeartbeat } from "./tick.ts";
import type { ConfChange, Message, ProposeResult, RaftStatus, Ready } from "./types.ts";

export { type RaftConfig, RANK_STAGGER_TICKS } from "./config.ts";

/** A Raft node modelled on etcd-io/raft: no I/O, no clocks, no ambient randomness. */
export class RaftNode {
  /** This node's id. */
  readonly id: NodeId;
  readonly #rs: RaftState;

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
    const resolved: ResolvedRaftConfig = {
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
    const log = (cfg.logger ?? nullLogger).with({ raft_node: cfg.id });
    const { hardState: hard, conf } = cfg.storage.initialState();
    const rs = new RaftState(resolved, log, new RaftLog(cfg.storage, hard.commit));
    this.#rs = rs;
    const snap = cfg.storage.snapshot();
    setConf(rs, conf);
    rs.confAppliedThrough = snap.meta.index;
    rs.confHistory = [{ index: snap.meta.index, conf: cloneConf(conf) }];
    // Committed conf changes after the snapshot are re-applied now, so a restarted node
    // never campaigns or counts votes with a membership older than what it committed.
    applyConfEntriesThrough(rs, rs.raftLog.committed);
    rs.term = Math.max(hard.term, snap.meta.term);
    rs.vote = hard.vote;
    becomeFollower(rs, rs.term, null);
    rs.prevHard = hardState(rs);
    rs.prevSoft = softState(rs);
    rs.log.debug("raft node started", {
      term: rs.term,
      commit: rs.raftLog.committed,
      last_index: rs.raftLog.lastIndex(),
      voters: rs.voters.join(","),
    });
  }

  /** Advances logical time by one tick. */
  tick(): void {
    const rs = this.#rs;
    rs.ticks++;
    if (rs.role === "leader") tickHeartbeat(rs);
    else tickElection(rs);
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void {
    const rs = this.#rs;
    hup(rs, false);
  }

  /** Feeds one message from a peer. Stale or malformed messages are dropped, never thrown. */
  step(m: Message): void {
    stepMessage(this.#rs, m);
  }

  /** Proposes application data; only the leader accepts. */
  propose(data: Uint8Array): ProposeResult {
    const rs = this.#rs;
    const refused = refuseProposal(rs);
    if (refused) return refused;
    return appendProposal(rs, "normal", data);
  }

  /** Proposes a single-server membership change; one may be pending at a time. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    return proposeConfChange(this.#rs, cc);
  }

  /** Asks for leadership to move to `to`; a follower forwards the request to its leader. */
  transferLeadership(to: NodeId): void {
    const rs = this.#rs;
    if (rs.role === "leader") {
      handleTransfer(rs, to);
    } else if (rs.lead !== null) {
      send(rs, {
        type: "transfer_leader",
        from: rs.id,
        to: rs.lead,
        term: rs.term,
        target: to,
      });
    } else {
      rs.log.info("raft: cannot transfer leadership: no leader known", { target: to });
    }
  }

  /** Requests a linearizable read index; the answer is a ReadState or ReadFailure later. */
  readIndex(ctx: string): void {
    const rs = this.#rs;
    if (rs.role === "leader") {
      leaderReadIndex(rs, ctx, rs.id);
    } else if (rs.role === "follower" && rs.lead !== null) {
      send(rs, { type: "read_index", from: rs.id, to: rs.lead, term: rs.term, ctx });
    } else {
      rs.readFailures.push({ ctx, reason: "no_leader" });
    }
  }

  /** Tells the leader a snapshot send to `to` finished (or failed), to resume replication. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const rs = this.#rs;
    const pr = rs.progress.get(to);
    if (rs.role !== "leader" || !pr || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or a heartbeat answer) before probing again.
    pr.probeSent = true;
  }

  /** Whether `ready()` has anything to hand out. */
  hasReady(): boolean {
    const rs = this.#rs;
    const l = rs.raftLog;
    if (rs.bcastOwed && rs.role === "leader") return true;
    if (
      rs.msgs.length > 0 || rs.readStates.length > 0 || rs.readFailures.length > 0 ||
      rs.voteDecisions.length > 0
    ) {
      return true;
    }
    if (l.unstable.entries.length > 0 || l.unstable.snapshot) return true;
    if (l.committed > l.applying) return true;
    const soft = softState(rs);
    if (soft.role !== rs.prevSoft.role || soft.leader !== rs.prevSoft.leader) return true;
    const hs = hardState(rs);
    return !sameHard(hs, rs.prevHard);
  }

  /** Collects what the driver must persist, send and apply, in that order. */
  ready(): Ready {
    const rs = this.#rs;
    const l = rs.raftLog;
    flushBcast(rs);
    const rd: Ready = {
      entries: [...l.unstable.entries],
      messages: rs.msgs,
      committedEntries: [],
      readStates: rs.readStates,
      readFailures: rs.readFailures,
      voteDecisions: rs.voteDecisions,
    };
    rs.msgs = [];
    rs.readStates = [];
    rs.readFailures = [];
    rs.voteDecisions = [];
    const soft = softState(rs);
    if (soft.role !== rs.prevSoft.role || soft.leader !== rs.prevSoft.leader) {
      rd.softState = soft;
      rs.prevSoft = soft;
    }
    const hs = hardState(rs);
    if (!sameHard(hs, rs.prevHard)) {
      rd.hardState = hs;
      rs.prevHard = hs;
    }
    const snap = l.unstable.snapshot;
    if (snap) rd.snapshot = snap;
    const lo = l.applying + 1;
    const hi = Math.min(l.committed, l.applying + rs.cfg.maxCommittedPerReady);
    if (hi >= lo) {
      const ents = l.slice(lo, hi + 1, hi + 1 - lo);
      assert(ents !== undefined, () => `committed entries ${lo}..${hi} are compacted`);
      rd.committedEntries = ents;
      l.applying = lo + ents.length - 1;
    }
    const last = rd.entries[rd.entries.length - 1];
    rs.pending = {
      lastIndex: last?.index ?? 0,
      lastTerm: last?.term ?? 0,
      snapIndex: snap?.meta.index ?? 0,
      applying: l.applying,
    };
    return rd;
  }

  /** The driver has persisted, sent and applied the last Ready. */
  advance(): void {
    const rs = this.#rs;
    const p = rs.pending;
    if (!p) return;
    rs.pending = null;
    const l = rs.raftLog;
    if (p.snapIndex > 0) {
      l.stableSnapTo(p.snapIndex);
      l.applied = Math.max(l.applied, p.snapIndex);
    }
    if (p.lastIndex > 0) l.stableTo(p.lastIndex, p.lastTerm);
    if (p.applying > l.applied) {
      applyConfEntriesThrough(rs, p.applying);
      l.applied = p.applying;
    }
    if (rs.role === "leader") releaseDeferredReads(rs);
  }

  /**
   * Records an application snapshot at `index` in storage and drops earlier entries.
   * `data` must be the state machine as of exactly `index`. `index` may be any entry
   * already handed out for applying, including those of the Ready being handled (note that
   * `status().applied` only moves at `advance()`).
   */
  compact(index: number, data: Uint8Array): void {
    const rs = this.#rs;
    const l = rs.raftLog;
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
    applyConfEntriesThrough(rs, index);
    let conf = rs.confHistory[0]!.conf;
    for (const h of rs.confHistory) if (h.index <= index) conf = h.conf;
    l.storage.compact(index, data, cloneConf(conf));
    // Keep the entry in force at `index` and everything after it.
    let keep = 0;
    for (let i = 0; i < rs.confHistory.length; i++) {
      if (rs.confHistory[i]!.index <= index) keep = i;
    }
    rs.confHistory = rs.confHistory.slice(keep);
  }

  /** A read-only view of this node's state. */
  status(): RaftStatus {
    const rs = this.#rs;
    const l = rs.raftLog;
    const st: RaftStatus = {
      id: rs.id,
      term: rs.term,
      vote: rs.vote,
      role: rs.role,
      leader: rs.lead,
      commit: l.committed,
      applied: l.applied,
      lastIndex: l.lastIndex(),
      firstIndex: l.firstIndex(),
      conf: { voters: [...rs.voters], learners: [...rs.learners] },
      leadTransferee: rs.leadTransferee,
    };
    if (rs.role === "leader") {
      st.progress = {};
      for (const id of sortedIds(rs.progress.keys())) {
        st.progress[id] = rs.progress.get(id)!.toStatus();
      }
    }
    return st;
  }

  /** Term of log entry `i`, or undefined when compacted or absent (for tests and tools). */
  termAt(i: number): number | undefined {
    const rs = this.#rs;
    return rs.raftLog.term(i);
  }
}
