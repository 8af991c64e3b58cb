/**
 * Value types shared by the Raft core, its storage, its codec and the driver.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";

export type { NodeId };

/** One log entry; `conf` entries carry an encoded {@linkcode ConfChange}. */
export type Entry = { term: number; index: number; type: "normal" | "conf"; data: Uint8Array };

/** State that must be on stable storage before any message of the same Ready is sent. */
export type HardState = { term: number; vote: NodeId | null; commit: number };

/** Cluster membership: voters count for quorums, learners only receive the log. */
export type ConfState = { voters: NodeId[]; learners: NodeId[] };

/** Where a snapshot sits in the log and the membership as of that index. */
export type SnapshotMeta = { index: number; term: number; conf: ConfState };

/** An application snapshot replacing every entry up to `meta.index`. */
export type Snapshot = { meta: SnapshotMeta; data: Uint8Array };

/** A single-server membership change. */
export type ConfChange = { op: "add_learner" | "promote" | "remove"; node: NodeId };

/** A confirmed read index: the caller may serve `ctx` once it has applied through `index`. */
export type ReadState = { index: number; ctx: string };

/** Why a read-index request was not served. */
export type ReadFailureReason = "no_leader" | "stepped_down" | "overloaded" | "rejected";

/** A read-index request that will never produce a ReadState. */
export type ReadFailure = { ctx: string; reason: ReadFailureReason };

/**
 * Why a vote or pre-vote went the way it did: `granted`; `in_lease` (this node heard from a live
 * leader within an election timeout: a vote is ignored, a pre-vote is answered when the lease
 * ends); `voted_other` (this term's vote went elsewhere); `has_leader` (this term has a leader);
 * `log_behind` (the candidate's log is not as up to date as ours); `stale_term`.
 */
export type VoteReason =
  | "granted"
  | "in_lease"
  | "voted_other"
  | "has_leader"
  | "log_behind"
  | "stale_term";

/** One decision on a vote or pre-vote request; `deferred` means answered later, not refused. */
export type VoteDecision = {
  type: "vote" | "pre_vote";
  candidate: NodeId;
  /** The term the candidate asked for. */
  term: number;
  outcome: "granted" | "refused" | "deferred";
  reason: VoteReason;
};

/** The role of a node. */
export type Role = "follower" | "pre_candidate" | "candidate" | "leader";

/** Volatile state reported for observability; need not be persisted. */
export type SoftState = { leader: NodeId | null; role: Role };

/** Fields every message carries. */
export type MessageBase = { from: NodeId; to: NodeId; term: number };

/** Leader → follower: entries after (`index`, `logTerm`), plus the leader's commit. */
export type AppendMsg = MessageBase & {
  type: "app";
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
};
/**
 * Follower → leader. On success `index` is the last index known to match; on rejection
 * `index` echoes the probe and (`rejectHint`, `logTerm`) tell the leader where to retry.
 */
export type AppendRespMsg = MessageBase & {
  type: "app_resp";
  index: number;
  reject: boolean;
  rejectHint: number;
  logTerm: number;
};
/** (Pre-)vote request; `transfer` marks a leader transfer, which bypasses leases. */
export type VoteMsg = MessageBase & {
  type: "vote" | "pre_vote";
  logTerm: number;
  index: number;
  transfer: boolean;
};
/** (Pre-)vote answer. */
export type VoteRespMsg = MessageBase & { type: "vote_resp" | "pre_vote_resp"; reject: boolean };
/** Leader liveness and commit propagation; a non-empty `ctx` is a read-index round. */
export type HeartbeatMsg = MessageBase & { type: "heartbeat"; commit: number; ctx: string };
/** Answer to a heartbeat, echoing its `ctx`. */
export type HeartbeatRespMsg = MessageBase & { type: "heartbeat_resp"; ctx: string };
/** InstallSnapshot. */
export type SnapshotMsg = MessageBase & { type: "snap"; snapshot: Snapshot };
/** Leader → transfer target: campaign now. */
export type TimeoutNowMsg = MessageBase & { type: "timeout_now" };
/** Follower → leader: please hand leadership to `target`. */
export type TransferLeaderMsg = MessageBase & { type: "transfer_leader"; target: NodeId };
/** Follower → leader: please confirm a read index for `ctx`. */
export type ReadIndexMsg = MessageBase & { type: "read_index"; ctx: string };
/** Leader → follower: the confirmed read index for `ctx`, or a rejection. */
export type ReadIndexRespMsg = MessageBase & {
  type: "read_index_resp";
  ctx: string;
  index: number;
  reject: boolean;
};

/** Every message exchanged between Raft peers. */
export type Message =
  | AppendMsg
  | AppendRespMsg
  | VoteMsg
  | VoteRespMsg
  | HeartbeatMsg
  | HeartbeatRespMsg
  | SnapshotMsg
  | TimeoutNowMsg
  | TransferLeaderMsg
  | ReadIndexMsg
  | ReadIndexRespMsg;

/** The discriminant values of {@linkcode Message}. */
export type MessageType = Message["type"];

/** Everything the driver must do, in order: persist, send, apply. */
export type Ready = {
  /** Present when leader or role changed. */
  softState?: SoftState;
  /** Persist if present. */
  hardState?: HardState;
  /** Append to stable storage (may overwrite a conflicting suffix). */
  entries: Entry[];
  /** Incoming snapshot to persist and apply (before `committedEntries`). */
  snapshot?: Snapshot;
  /** Send AFTER persisting. */
  messages: Message[];
  /** Apply in order; entries with empty `data` are leader no-ops to skip. */
  committedEntries: Entry[];
  /** Confirmed read indexes. */
  readStates: ReadState[];
  /** Read-index requests that failed and will never produce a ReadState. */
  readFailures: ReadFailure[];
  /** Vote and pre-vote decisions this node made, for the driver to log. */
  voteDecisions: VoteDecision[];
};

/** Outcome of a proposal; expected failures are values, not exceptions. */
export type ProposeResult =
  | { ok: true; index: number; term: number }
  | { ok: false; reason: "not_leader"; leader: NodeId | null }
  | { ok: false; reason: "transferring"; leader: NodeId }
  | { ok: false; reason: "overloaded" }
  | {
    ok: false;
    reason: "conf_change_pending" | "invalid_conf_change" | "learner_behind";
    detail: string;
  };

/** Replication state of one follower as seen by the leader. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** A snapshot of one follower's progress, for status output. */
export type ProgressStatus = {
  match: number;
  next: number;
  state: ProgressState;
  learner: boolean;
  recentActive: boolean;
};

/** What {@linkcode RaftNode.status} returns. */
export type RaftStatus = {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  role: Role;
  leader: NodeId | null;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  conf: ConfState;
  leadTransferee: NodeId | null;
  progress?: Record<string, ProgressStatus>;
};
