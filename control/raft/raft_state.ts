/**
 * The state of one Raft node, shared by the modules that each handle one concern of the
 * protocol (election, replication, read index, membership, message handling, ticks), and the
 * few helpers all of them use. The modules take it as their first argument; {@linkcode RaftNode}
 * owns the only instance and is the only way in from outside.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import type { Logger } from "../../common/log.ts";
import type { ResolvedRaftConfig } from "./config.ts";
import type { Progress } from "./progress.ts";
import type { RaftLog } from "./raft_log.ts";
import type {
  ConfState,
  HardState,
  Message,
  ReadFailure,
  ReadState,
  Role,
  SoftState,
  VoteDecision,
  VoteMsg,
} from "./types.ts";

/** A read-index request waiting for a heartbeat quorum. */
export type ReadRequest = { ctx: string; index: number; from: NodeId; acks: Set<NodeId> };

/** Distinct ids, sorted, so iteration (and so message order) is reproducible. */
export function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Whether two hard states are equal. */
export function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Everything one Raft node knows; the protocol modules read and change it. */
export class RaftState {
  /** This node's id. */
  readonly id: NodeId;
  /** The configuration with every default filled in. */
  readonly cfg: ResolvedRaftConfig;
  /** Logger for state transitions. */
  readonly log: Logger;
  /** The log: stable storage plus the entries not persisted yet. */
  readonly raftLog: RaftLog;

  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = "follower";
  voters: NodeId[] = [];
  learners: NodeId[] = [];
  /** Conf entries at or below this index are already reflected in the membership. */
  confAppliedThrough = 0;
  /** Membership after each applied conf change, so compaction can record the right one. */
  confHistory: { index: number; conf: ConfState }[] = [];
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  ticks = 0;
  leadTransferee: NodeId | null = null;
  pendingConfIndex = 0;
  reads = new Map<string, ReadRequest>();
  readQueue: string[] = [];
  /** Reads received before this leader committed an entry of its own term. */
  deferredReads: { ctx: string; from: NodeId }[] = [];

  msgs: Message[] = [];
  /** A broadcast of appends is owed at the next Ready (see `coalesceAppends`). */
  bcastOwed = false;
  readStates: ReadState[] = [];
  readFailures: ReadFailure[] = [];
  voteDecisions: VoteDecision[] = [];
  /**
   * Pre-votes that arrived while this follower still heard its leader, answered the tick its
   * lease ends. Dropping them instead left the first node to time out a pre-candidate until its
   * next timeout whenever a peer's lease outlived its own by a tick, and the election went to
   * whichever node timed out second, up to an election timeout later.
   */
  deferredPreVotes = new Map<NodeId, VoteMsg>();
  prevSoft!: SoftState;
  prevHard!: HardState;
  /** What the last Ready handed out, for advance(). */
  pending: { lastIndex: number; lastTerm: number; snapIndex: number; applying: number } | null =
    null;

  /** Creates the state of a node that has not entered any term yet. */
  constructor(cfg: ResolvedRaftConfig, log: Logger, raftLog: RaftLog) {
    this.id = cfg.id;
    this.cfg = cfg;
    this.log = log;
    this.raftLog = raftLog;
  }
}

/** The volatile state a Ready reports when it changes. */
export function softState(rs: RaftState): SoftState {
  return { leader: rs.lead, role: rs.role };
}

/** The state that must be persisted before messages are sent. */
export function hardState(rs: RaftState): HardState {
  return { term: rs.term, vote: rs.vote, commit: rs.raftLog.committed };
}

/** Whether this node is a voter, so it may campaign. */
export function promotable(rs: RaftState): boolean {
  return rs.voters.includes(rs.id);
}

/** Whether a majority of the voters (this node included) was heard from lately. */
export function quorumActive(rs: RaftState): boolean {
  let active = 0;
  for (const v of rs.voters) {
    if (v === rs.id || rs.progress.get(v)?.recentActive) active++;
  }
  return active >= Math.floor(rs.voters.length / 2) + 1;
}

/** Queues `m` for the next Ready; nothing leaves before the driver collects it. */
export function send(rs: RaftState, m: Message): void {
  rs.msgs.push(m);
}

/** Whether `acks` holds a majority of the voters. */
export function hasQuorum(rs: RaftState, acks: Set<NodeId>): boolean {
  let n = 0;
  for (const v of rs.voters) if (acks.has(v)) n++;
  return n >= Math.floor(rs.voters.length / 2) + 1;
}

/** The other members with progress, sorted so message order is reproducible. */
export function peers(rs: RaftState): NodeId[] {
  return sortedIds(rs.progress.keys()).filter((id) => id !== rs.id);
}

/** Sets the membership from `c`, sorted, a voter never also a learner. */
export function setConf(rs: RaftState, c: ConfState): void {
  rs.voters = sortedIds(c.voters);
  rs.learners = sortedIds(c.learners).filter((l) => !rs.voters.includes(l));
}
