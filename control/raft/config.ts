/**
 * The configuration of one Raft node and its defaults.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import type { Logger } from "../../common/log.ts";
import type { RaftStorage } from "./storage.ts";

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

/** A {@linkcode RaftConfig} with every default filled in (the logger is kept apart). */
export type ResolvedRaftConfig = Required<Omit<RaftConfig, "logger">>;
