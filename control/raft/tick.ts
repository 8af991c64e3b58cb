/**
 * Logical time: what one tick does for a follower or candidate (election timeout, deferred
 * pre-votes) and for the leader (quorum check, heartbeats, retries).
 * @module
 */
import { RANK_STAGGER_TICKS } from "./config.ts";
import { promotable, quorumActive, type RaftState } from "./raft_state.ts";
import { bcastHeartbeat } from "./replication.ts";
import { becomeFollower, hup } from "./election.ts";
import { stepMessage } from "./step.ts";

/** Ticks after which this node campaigns (see `rankedTimeouts`). */
export function electionTimeout(rs: RaftState): number {
  const lead = rs.lead;
  if (!rs.cfg.rankedTimeouts || rs.role !== "follower" || lead === null) {
    return rs.randomizedElectionTimeout;
  }
  const others = rs.voters.filter((v) => v !== lead).sort();
  const rank = Math.max(0, others.indexOf(rs.id));
  return rs.cfg.electionTicks +
    Math.min(RANK_STAGGER_TICKS * rank, rs.cfg.electionTicks - 1);
}

/** One tick of a follower or candidate: deferred pre-votes, then maybe campaign. */
export function tickElection(rs: RaftState): void {
  rs.electionElapsed++;
  if (rs.deferredPreVotes.size > 0 && rs.electionElapsed >= rs.cfg.electionTicks) {
    // The lease ran out with no word from the leader: answer as if they arrived now.
    const deferred = [...rs.deferredPreVotes.values()];
    rs.deferredPreVotes.clear();
    for (const m of deferred) stepMessage(rs, m);
  }
  if (promotable(rs) && rs.electionElapsed >= electionTimeout(rs)) {
    rs.electionElapsed = 0;
    hup(rs, false);
  }
}

/** One tick of the leader: quorum check, transfer timeout, snapshot retry, heartbeat. */
export function tickHeartbeat(rs: RaftState): void {
  rs.heartbeatElapsed++;
  rs.electionElapsed++;
  if (rs.electionElapsed >= rs.cfg.electionTicks) {
    rs.electionElapsed = 0;
    if (rs.cfg.checkQuorum) {
      if (!quorumActive(rs)) {
        rs.log.info("raft: stepping down: no active quorum", { term: rs.term });
        becomeFollower(rs, rs.term, null);
        return;
      }
      for (const [id, pr] of rs.progress) if (id !== rs.id) pr.recentActive = false;
    }
    if (rs.leadTransferee !== null) {
      rs.log.info("raft: leader transfer timed out", { target: rs.leadTransferee });
      rs.leadTransferee = null;
    }
  }
  for (const [id, pr] of rs.progress) {
    // A snapshot that got lost in the network is retried after an election timeout.
    if (
      id !== rs.id && pr.state === "snapshot" &&
      rs.ticks - pr.snapshotSentTick >= rs.cfg.electionTicks
    ) {
      pr.becomeProbe();
    }
  }
  if (rs.heartbeatElapsed >= rs.cfg.heartbeatTicks) {
    rs.heartbeatElapsed = 0;
    bcastHeartbeat(rs, "");
  }
}
