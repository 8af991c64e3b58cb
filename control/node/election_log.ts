/**
 * What the Ready loop logs about elections: every vote and pre-vote decision with its reason,
 * and how long the fsync of a new term or vote took. Elections are rare, so each line is cheap,
 * and together they say why a failover was slow: a refused pre-vote, a deferred one, or a disk.
 * @module
 */
import type { Logger } from "../../common/mod.ts";
import type { HardState, VoteDecision } from "../raft/types.ts";

/** Logs each vote or pre-vote decision of a Ready at info. */
export function logVoteDecisions(log: Logger, decisions: readonly VoteDecision[]): void {
  for (const d of decisions) {
    log.info(`raft: ${d.type.replace("_", "-")} ${d.outcome}`, {
      candidate: d.candidate,
      term: d.term,
      reason: d.reason,
    });
  }
}

/** Whether `next` moves the term or the vote of `prev`: no answer leaves before its fsync. */
export function changesVote(prev: HardState, next: HardState): boolean {
  return next.term !== prev.term || next.vote !== prev.vote;
}

/** Logs how long persisting a new term or vote took. */
export function logVotePersisted(log: Logger, hs: HardState, ms: number): void {
  log.info("raft: term and vote persisted", {
    term: hs.term,
    vote: hs.vote ?? "none",
    ms: Math.round(ms),
  });
}
