/**
 * Message handling: {@linkcode stepMessage} sorts a peer's message by term, then hands it to the
 * step function of this node's role, as etcd-io/raft does.
 * @module
 */
import type { Progress } from "./progress.ts";
import { hasQuorum, type RaftState, send } from "./raft_state.ts";
import { bcastAppend, handleAppendResp, handleTransfer, sendAppend } from "./replication.ts";
import { answerRead, leaderReadIndex, rejectReadIndex } from "./read_index.ts";
import {
  becomeFollower,
  becomeLeader,
  campaignElection,
  decided,
  handleVoteRequest,
  hup,
  tally,
} from "./election.ts";
import { handleAppend, handleHeartbeat, handleSnapshot } from "./follower.ts";
import type { HeartbeatRespMsg, Message } from "./types.ts";

/** Feeds one message from a peer. Stale or malformed messages are dropped, never thrown. */
export function stepMessage(rs: RaftState, m: Message): void {
  if (m.to !== rs.id) {
    rs.log.warn("raft: dropping message addressed to another node", { to: m.to });
    return;
  }
  if (!Number.isSafeInteger(m.term) || m.term < 0) return;
  if (m.term > rs.term) {
    if (m.type === "vote" || m.type === "pre_vote") {
      const inLease = rs.cfg.checkQuorum && rs.lead !== null &&
        rs.electionElapsed < rs.cfg.electionTicks;
      if (!m.transfer && inLease) {
        // A node cut off from the leader must not depose it while it is still live.
        const defer = m.type === "pre_vote" && rs.role === "follower" &&
          rs.voters.includes(m.from);
        if (defer) rs.deferredPreVotes.set(m.from, m);
        decided(rs, m, defer ? "deferred" : "refused", "in_lease");
        return;
      }
    }
    if (m.type === "pre_vote") {
      // Pre-votes never change our term.
    } else if (m.type === "pre_vote_resp" && !m.reject) {
      // A granted pre-vote carries the term we would campaign in.
    } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
      becomeFollower(rs, m.term, m.from);
    } else {
      becomeFollower(rs, m.term, null);
    }
  } else if (m.term < rs.term) {
    if (
      (rs.cfg.checkQuorum || rs.cfg.preVote) &&
      (m.type === "app" || m.type === "heartbeat")
    ) {
      // A stale leader would otherwise never learn about the newer term.
      send(rs, {
        type: "app_resp",
        from: rs.id,
        to: m.from,
        term: rs.term,
        index: 0,
        reject: false,
        rejectHint: 0,
        logTerm: 0,
      });
    } else if (m.type === "pre_vote" || m.type === "vote") {
      decided(rs, m, "refused", "stale_term");
      if (m.type === "vote") return;
      send(rs, {
        type: "pre_vote_resp",
        from: rs.id,
        to: m.from,
        term: rs.term,
        reject: true,
      });
    } else if (m.type === "read_index") {
      rejectReadIndex(rs, m);
    }
    return;
  }

  if (m.type === "vote" || m.type === "pre_vote") {
    handleVoteRequest(rs, m);
    return;
  }
  switch (rs.role) {
    case "leader":
      stepLeader(rs, m);
      break;
    case "candidate":
    case "pre_candidate":
      stepCandidate(rs, m);
      break;
    case "follower":
      stepFollower(rs, m);
      break;
  }
}

/** Handles a message of the current term as a follower. */
export function stepFollower(rs: RaftState, m: Message): void {
  switch (m.type) {
    case "app":
      rs.electionElapsed = 0;
      rs.lead = m.from;
      rs.deferredPreVotes.clear();
      handleAppend(rs, m);
      break;
    case "heartbeat":
      rs.electionElapsed = 0;
      rs.lead = m.from;
      rs.deferredPreVotes.clear();
      handleHeartbeat(rs, m);
      break;
    case "snap":
      rs.electionElapsed = 0;
      rs.lead = m.from;
      rs.deferredPreVotes.clear();
      handleSnapshot(rs, m);
      break;
    case "timeout_now":
      rs.log.info("raft: leadership transfer: campaigning now", { from: m.from });
      hup(rs, true);
      break;
    case "transfer_leader":
      if (rs.lead !== null) {
        send(rs, { ...m, to: rs.lead, from: rs.id, term: rs.term });
      }
      break;
    case "read_index":
      // Only a leader answers; forwarding would lose the original requester.
      rejectReadIndex(rs, m);
      break;
    case "read_index_resp":
      if (m.reject) rs.readFailures.push({ ctx: m.ctx, reason: "rejected" });
      else if (m.index >= 0 && Number.isSafeInteger(m.index)) {
        rs.readStates.push({ index: m.index, ctx: m.ctx });
      }
      break;
    default:
      break;
  }
}

/** Handles a message of the current term as a (pre-)candidate. */
export function stepCandidate(rs: RaftState, m: Message): void {
  switch (m.type) {
    case "app":
      becomeFollower(rs, m.term, m.from);
      handleAppend(rs, m);
      break;
    case "heartbeat":
      becomeFollower(rs, m.term, m.from);
      handleHeartbeat(rs, m);
      break;
    case "snap":
      becomeFollower(rs, m.term, m.from);
      handleSnapshot(rs, m);
      break;
    case "vote_resp":
    case "pre_vote_resp": {
      const mine = rs.role === "pre_candidate" ? "pre_vote_resp" : "vote_resp";
      if (m.type !== mine || !rs.voters.includes(m.from)) break;
      if (!rs.votes.has(m.from)) rs.votes.set(m.from, !m.reject);
      const r = tally(rs);
      if (r === "won") {
        if (rs.role === "pre_candidate") campaignElection(rs, false);
        else {
          becomeLeader(rs);
          bcastAppend(rs);
        }
      } else if (r === "lost") {
        becomeFollower(rs, rs.term, null);
      }
      break;
    }
    case "read_index":
      rejectReadIndex(rs, m);
      break;
    default:
      break;
  }
}

/** Handles a message of the current term as the leader. */
export function stepLeader(rs: RaftState, m: Message): void {
  const pr = rs.progress.get(m.from);
  switch (m.type) {
    case "app_resp":
      // An acknowledgement past our own log cannot be genuine.
      if (pr && Number.isSafeInteger(m.index) && m.index <= rs.raftLog.lastIndex()) {
        handleAppendResp(rs, m, pr);
      }
      break;
    case "heartbeat_resp":
      if (pr) handleHeartbeatResp(rs, m, pr);
      break;
    case "transfer_leader":
      if (pr) handleTransfer(rs, m.target);
      break;
    case "read_index":
      if (pr) leaderReadIndex(rs, m.ctx, m.from);
      break;
    default:
      break;
  }
}

/** Takes a heartbeat answer: liveness, replication, and read-index acknowledgements. */
export function handleHeartbeatResp(rs: RaftState, m: HeartbeatRespMsg, pr: Progress): void {
  pr.recentActive = true;
  pr.probeSent = false;
  if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
  // If nothing is left to send, an empty append (as etcd does, but at most one per follower
  // and tick): had the entries sent last been lost, the follower refuses its previous index
  // and the leader backs off and resends. Without it a follower that lost the last append
  // stayed behind until the next write.
  if (pr.match < rs.raftLog.lastIndex() && !sendAppend(rs, m.from)) {
    if (pr.emptyProbeTick !== rs.ticks) {
      pr.emptyProbeTick = rs.ticks;
      sendAppend(rs, m.from, true);
    }
  }
  if (m.ctx === "") return;
  const req = rs.reads.get(m.ctx);
  if (!req) return;
  if (rs.voters.includes(m.from)) req.acks.add(m.from);
  if (!hasQuorum(rs, req.acks)) return;
  // Every request queued before this one is confirmed by the same round.
  while (rs.readQueue.length > 0) {
    const ctx = rs.readQueue.shift()!;
    const r = rs.reads.get(ctx)!;
    rs.reads.delete(ctx);
    answerRead(rs, r.ctx, r.index, r.from);
    if (ctx === m.ctx) break;
  }
}
