/**
 * Roles and elections: becoming follower, pre-candidate, candidate or leader, campaigning,
 * counting votes, and answering vote requests.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import { Progress } from "./progress.ts";
import { assert } from "./raft_log.ts";
import { campaignsAhead, decideVote } from "./vote.ts";
import { promotable, type RaftState, send } from "./raft_state.ts";
import { appendEntries } from "./replication.ts";
import { failPendingReads } from "./read_index.ts";
import type { VoteDecision, VoteMsg, VoteReason } from "./types.ts";

/** Enters `term` (forgetting the vote if it changed) and resets timers, votes and progress. */
export function reset(rs: RaftState, term: number): void {
  if (rs.term !== term) {
    rs.term = term;
    rs.vote = null;
  }
  rs.lead = null;
  rs.electionElapsed = 0;
  rs.heartbeatElapsed = 0;
  rs.randomizedElectionTimeout = rs.cfg.electionTicks +
    Math.floor(rs.cfg.random() * rs.cfg.electionTicks);
  rs.leadTransferee = null;
  rs.votes.clear();
  rs.deferredPreVotes.clear();
  failPendingReads(rs);
  const last = rs.raftLog.lastIndex();
  rs.progress.clear();
  for (const v of rs.voters) {
    rs.progress.set(v, new Progress(last + 1, rs.cfg.maxInflightMsgs, false));
  }
  for (const v of rs.learners) {
    rs.progress.set(v, new Progress(last + 1, rs.cfg.maxInflightMsgs, true));
  }
  const self = rs.progress.get(rs.id);
  if (self) self.match = last;
  rs.pendingConfIndex = 0;
}

/** Becomes a follower in `term` of `lead` (null when unknown). */
export function becomeFollower(rs: RaftState, term: number, lead: NodeId | null): void {
  reset(rs, term);
  rs.lead = lead;
  rs.role = "follower";
}

/** Becomes a pre-candidate without touching term or vote. */
export function becomePreCandidate(rs: RaftState): void {
  assert(rs.role !== "leader", () => "leader cannot become pre-candidate");
  // Term and vote stay: a pre-vote round must not disturb anything if it fails.
  rs.votes.clear();
  failPendingReads(rs);
  rs.lead = null;
  rs.role = "pre_candidate";
}

/** Becomes a candidate in the next term, voting for itself. */
export function becomeCandidate(rs: RaftState): void {
  assert(rs.role !== "leader", () => "leader cannot become candidate");
  reset(rs, rs.term + 1);
  rs.vote = rs.id;
  rs.role = "candidate";
}

/** Becomes leader and appends the empty entry that commits its term. */
export function becomeLeader(rs: RaftState): void {
  assert(
    rs.role === "candidate",
    () => `only a candidate can become leader, was ${rs.role}`,
  );
  reset(rs, rs.term);
  rs.lead = rs.id;
  rs.role = "leader";
  for (const pr of rs.progress.values()) pr.recentActive = true;
  // No conf change until this leader commits an entry of its own term: the known fix for
  // single-server changes racing a leader change.
  rs.pendingConfIndex = rs.raftLog.lastIndex();
  appendEntries(rs, [{ term: rs.term, index: 0, type: "normal", data: new Uint8Array() }]);
  rs.log.info("raft: became leader", {
    term: rs.term,
    last_index: rs.raftLog.lastIndex(),
  });
}

/** Campaigns (pre-vote first when enabled) unless it leads, cannot vote or has conf to apply. */
export function hup(rs: RaftState, transfer: boolean): void {
  if (rs.role === "leader" || !promotable(rs)) return;
  if (hasUnappliedConf(rs)) {
    rs.log.debug("raft: not campaigning: committed conf change not applied yet");
    return;
  }
  if (rs.cfg.preVote && !transfer) campaignPre(rs);
  else campaignElection(rs, transfer);
}

/** Whether a committed conf entry is not applied yet. */
export function hasUnappliedConf(rs: RaftState): boolean {
  const l = rs.raftLog;
  if (l.committed <= l.applied) return false;
  const ents = l.slice(l.applied + 1, l.committed + 1, l.committed - l.applied);
  return ents?.some((e) => e.type === "conf") ?? false;
}

/** Starts a pre-vote round for the next term. */
export function campaignPre(rs: RaftState): void {
  becomePreCandidate(rs);
  requestVotes(rs, "pre_vote", rs.term + 1, false);
}

/** Starts an election in the next term. */
export function campaignElection(rs: RaftState, transfer: boolean): void {
  becomeCandidate(rs);
  requestVotes(rs, "vote", rs.term, transfer);
}

/** Votes for itself and asks every other voter; wins at once when alone. */
export function requestVotes(
  rs: RaftState,
  type: "vote" | "pre_vote",
  term: number,
  transfer: boolean,
): void {
  rs.votes.set(rs.id, true);
  if (tally(rs) === "won") {
    if (type === "pre_vote") campaignElection(rs, transfer);
    else becomeLeader(rs);
    return;
  }
  const index = rs.raftLog.lastIndex();
  const logTerm = rs.raftLog.lastTerm();
  for (const v of rs.voters) {
    if (v === rs.id) continue;
    send(rs, { type, from: rs.id, to: v, term, logTerm, index, transfer });
  }
}

/** Counts the votes received: won, lost, or still pending. */
export function tally(rs: RaftState): "won" | "lost" | "pending" {
  let granted = 0;
  let rejected = 0;
  for (const v of rs.voters) {
    const g = rs.votes.get(v);
    if (g === true) granted++;
    else if (g === false) rejected++;
  }
  const q = Math.floor(rs.voters.length / 2) + 1;
  if (granted >= q) return "won";
  if (rejected >= q || rs.voters.length - rejected < q) return "lost";
  return "pending";
}

/** Answers a vote or pre-vote request per `decideVote`. */
export function handleVoteRequest(rs: RaftState, m: VoteMsg): void {
  const pre = m.type === "pre_vote";
  const { grant, reason } = decideVote({
    pre,
    candidate: m.from,
    term: m.term,
    ourTerm: rs.term,
    vote: rs.vote,
    lead: rs.lead,
    logUpToDate: rs.raftLog.isUpToDate(m.index, m.logTerm),
  });
  decided(rs, m, grant ? "granted" : "refused", reason);
  const type = pre ? "pre_vote_resp" : "vote_resp";
  if (grant) {
    // The answer carries the requested term so the candidate can count it.
    send(rs, { type, from: rs.id, to: m.from, term: m.term, reject: false });
    if (!pre) {
      rs.electionElapsed = 0;
      rs.vote = m.from;
    }
  } else {
    send(rs, { type, from: rs.id, to: m.from, term: rs.term, reject: true });
    const ahead = campaignsAhead({
      reason,
      role: rs.role,
      promotable: promotable(rs),
      electionElapsed: rs.electionElapsed,
      electionTicks: rs.cfg.electionTicks,
    });
    // The election clock restarts only when the campaign really starts (hup waits while a
    // committed membership change is unapplied).
    if (ahead && !hasUnappliedConf(rs)) {
      rs.log.info(
        "raft: campaigning now: a candidate's log is behind ours and no leader is heard",
        {
          candidate: m.from,
          term: rs.term,
        },
      );
      rs.electionElapsed = 0;
      hup(rs, false);
    }
  }
}

/** Records how a vote request was decided, for the Ready. */
export function decided(
  rs: RaftState,
  m: VoteMsg,
  outcome: VoteDecision["outcome"],
  reason: VoteReason,
): void {
  rs.voteDecisions.push({ type: m.type, candidate: m.from, term: m.term, outcome, reason });
}
