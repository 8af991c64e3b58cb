/**
 * Leader-side replication: appending proposals, sending appends, snapshots and heartbeats to
 * followers, following their progress, advancing the commit index, and leadership transfer.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import type { Progress } from "./progress.ts";
import { peers, type RaftState, send } from "./raft_state.ts";
import type { AppendRespMsg, Entry, ProposeResult } from "./types.ts";

/** Updates a follower's progress from its answer to an append, and replicates on. */
export function handleAppendResp(rs: RaftState, m: AppendRespMsg, pr: Progress): void {
  const l = rs.raftLog;
  pr.recentActive = true;
  if (m.reject) {
    let hint = m.rejectHint;
    if (m.logTerm > 0) hint = l.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecrTo(m.index, hint)) {
      if (pr.state === "replicate") pr.becomeProbe();
      sendAppend(rs, m.from);
    }
    return;
  }
  const oldPaused = pr.isPaused();
  if (!pr.maybeUpdate(m.index)) {
    if (oldPaused && !pr.isPaused()) sendAppend(rs, m.from);
    return;
  }
  if (pr.state === "probe") pr.becomeReplicate();
  else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
  else if (pr.state === "replicate") pr.inflights.freeLE(m.index);
  if (maybeCommit(rs)) {
    owedBcast(rs);
  } else {
    // A follower that was paused may have missed commit updates.
    if (oldPaused) sendAppend(rs, m.from, true);
    while (sendAppend(rs, m.from)) {
      // Keep the pipeline full up to the in-flight bound.
    }
  }
  if (m.from === rs.leadTransferee && pr.match === l.lastIndex()) {
    sendTimeoutNow(rs, m.from);
  }
}

/** Why a proposal is refused now (not leader, transferring, overloaded), or undefined. */
export function refuseProposal(rs: RaftState): ProposeResult | undefined {
  if (rs.role !== "leader") return { ok: false, reason: "not_leader", leader: rs.lead };
  if (rs.leadTransferee !== null) {
    return { ok: false, reason: "transferring", leader: rs.id };
  }
  const uncommitted = rs.raftLog.lastIndex() - rs.raftLog.committed;
  if (uncommitted >= rs.cfg.maxUncommittedEntries) return { ok: false, reason: "overloaded" };
  return undefined;
}

/** Appends one proposed entry to the leader's log and owes its broadcast. */
export function appendProposal(
  rs: RaftState,
  type: Entry["type"],
  data: Uint8Array,
): ProposeResult {
  const e: Entry = { term: rs.term, index: 0, type, data };
  const last = appendEntries(rs, [e]);
  owedBcast(rs);
  return { ok: true, index: last, term: rs.term };
}

/** Appends entries in the current term to the leader's log; returns the last index. */
export function appendEntries(rs: RaftState, ents: Entry[]): number {
  const l = rs.raftLog;
  let idx = l.lastIndex();
  const withIdx = ents.map((e) => ({ ...e, term: rs.term, index: ++idx }));
  const last = l.append(withIdx);
  rs.progress.get(rs.id)?.maybeUpdate(last);
  // A single-voter cluster commits on its own.
  maybeCommit(rs);
  return last;
}

/** Advances the commit index to what a quorum holds in this term; whether it moved. */
export function maybeCommit(rs: RaftState): boolean {
  const matches = rs.voters.map((v) => rs.progress.get(v)?.match ?? 0).sort((a, b) => b - a);
  if (matches.length === 0) return false;
  const q = Math.floor(matches.length / 2) + 1;
  const mci = matches[q - 1]!;
  const l = rs.raftLog;
  // Only an entry of the current term is committed by counting replicas (Raft §5.4.2).
  if (mci > l.committed && l.term(mci) === rs.term) {
    l.commitTo(mci);
    return true;
  }
  return false;
}

/** Sends every peer its next append, empty ones too (they carry the commit index). */
export function bcastAppend(rs: RaftState): void {
  // Empty appends too: they carry the new commit index.
  for (const id of peers(rs)) sendAppend(rs, id, true);
}

/** Broadcasts now, or at the next Ready when appends are coalesced. */
export function owedBcast(rs: RaftState): void {
  if (rs.cfg.coalesceAppends) rs.bcastOwed = true;
  else bcastAppend(rs);
}

/** Sends the broadcast owed since the last Ready, if this node still leads. */
export function flushBcast(rs: RaftState): void {
  if (!rs.bcastOwed) return;
  rs.bcastOwed = false;
  // A node that stepped down since owes nothing: its successor replicates.
  if (rs.role === "leader") bcastAppend(rs);
}

/** Sends every peer a heartbeat carrying `ctx` (a read-index round, or empty). */
export function bcastHeartbeat(rs: RaftState, ctx: string): void {
  for (const id of peers(rs)) {
    const pr = rs.progress.get(id)!;
    send(rs, {
      type: "heartbeat",
      from: rs.id,
      to: id,
      term: rs.term,
      commit: Math.min(pr.match, rs.raftLog.committed),
      ctx,
    });
  }
}

/** Sends the next append (or snapshot) to `to`; returns whether anything was sent. */
export function sendAppend(rs: RaftState, to: NodeId, sendIfEmpty = false): boolean {
  const pr = rs.progress.get(to);
  if (!pr || pr.isPaused()) return false;
  const l = rs.raftLog;
  const prevIndex = pr.next - 1;
  const prevTerm = l.term(prevIndex);
  const ents = prevTerm === undefined
    ? undefined
    : l.slice(pr.next, l.lastIndex() + 1, rs.cfg.maxEntriesPerMsg);
  if (prevTerm === undefined || ents === undefined) {
    const snap = l.snapshot();
    if (snap.meta.index === 0) return false;
    pr.becomeSnapshot(snap.meta.index, rs.ticks);
    rs.log.info("raft: sending snapshot", { to, index: snap.meta.index });
    send(rs, { type: "snap", from: rs.id, to, term: rs.term, snapshot: snap });
    return true;
  }
  if (ents.length === 0 && pr.state === "replicate" && !sendIfEmpty) return false;
  send(rs, {
    type: "app",
    from: rs.id,
    to,
    term: rs.term,
    logTerm: prevTerm,
    index: prevIndex,
    entries: ents,
    commit: l.committed,
  });
  if (ents.length > 0 && pr.state === "replicate") {
    const last = ents[ents.length - 1]!.index;
    pr.next = last + 1;
    pr.inflights.add(last);
  } else if (pr.state === "probe") {
    pr.probeSent = true;
  }
  return true;
}

/** Tells `to` to campaign at once (the last step of a leadership transfer). */
export function sendTimeoutNow(rs: RaftState, to: NodeId): void {
  send(rs, { type: "timeout_now", from: rs.id, to, term: rs.term });
}

/** Starts moving leadership to `to` once it has caught up. */
export function handleTransfer(rs: RaftState, to: NodeId): void {
  if (to === rs.id) return;
  if (!rs.voters.includes(to)) {
    rs.log.info("raft: ignoring leader transfer to a non-voter", { target: to });
    return;
  }
  if (rs.leadTransferee === to) return;
  rs.leadTransferee = to;
  // The transfer must finish within one election timeout or it is abandoned.
  rs.electionElapsed = 0;
  const pr = rs.progress.get(to)!;
  if (pr.match === rs.raftLog.lastIndex()) sendTimeoutNow(rs, to);
  else sendAppend(rs, to);
}
