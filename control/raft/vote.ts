/**
 * The voter's side of an election: whether to grant a vote or pre-vote request, and why.
 * Pure: the node hands in its state and records the decision for the driver to log.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import type { VoteReason } from "./types.ts";

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
