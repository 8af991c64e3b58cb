/**
 * The voter's side of an election: whether to grant a vote or pre-vote request, and why.
 * Pure: the node hands in its state and records the decision for the driver to log.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import type { Role, VoteReason } from "./types.ts";

/** What a voter knows when a vote or pre-vote request at a term ≥ its own arrives. */
export type VoterView = {
  pre: boolean;
  candidate: NodeId;
  /** The term the candidate asks for. */
  term: number;
  /** The voter's current term. */
  ourTerm: number;
  vote: NodeId | null;
  lead: NodeId | null;
  /** Whether the candidate's log is at least as up to date as the voter's. */
  logUpToDate: boolean;
};

/** Decides a vote request (Raft §5.2, §5.4.1; pre-vote §9.6 of the thesis). */
export function decideVote(v: VoterView): { grant: boolean; reason: VoteReason } {
  // A pre-vote for a later term promises nothing, so an earlier vote or leader does not bind it.
  const free = v.vote === v.candidate || (v.vote === null && v.lead === null) ||
    (v.pre && v.term > v.ourTerm);
  if (!free) return { grant: false, reason: v.vote !== null ? "voted_other" : "has_leader" };
  if (!v.logUpToDate) return { grant: false, reason: "log_behind" };
  return { grant: true, reason: "granted" };
}

/** What a voter knows right after refusing a vote or pre-vote request. */
export type RefusalView = {
  reason: VoteReason;
  role: Role;
  /** Whether the voter may campaign at all (it is a voter). */
  promotable: boolean;
  /** Ticks since the voter last heard a leader (or since its last reset). */
  electionElapsed: number;
  electionTicks: number;
};

/**
 * Whether a follower that refused a candidate because its own log is ahead should campaign at
 * once. Its leader has been silent for a whole election timeout (so its voter lease is over and
 * it would itself time out soon), and the candidate cannot win without a vote it may never get:
 * in a three-node cluster with the leader cut off, this follower is the only one that can win.
 * Waiting for its own timeout left the election idle for the time between the two followers'
 * timeouts. Only the start of its campaign moves; that campaign is an ordinary pre-vote round,
 * so every other voter's lease and log check still apply.
 */
export function campaignsAhead(v: RefusalView): boolean {
  return v.reason === "log_behind" && v.role === "follower" && v.promotable &&
    v.electionElapsed >= v.electionTicks;
}
