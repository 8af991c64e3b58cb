/**
 * The follower side of replication: taking a leader's appends, heartbeats and snapshots into
 * this node's log, and answering them.
 * @module
 */
import { cloneConf } from "./storage.ts";
import { type RaftState, send, setConf } from "./raft_state.ts";
import type { AppendMsg, HeartbeatMsg, SnapshotMsg } from "./types.ts";

/** Whether an append is well formed (indices and terms consistent). */
export function validAppend(m: AppendMsg): boolean {
  if (!Number.isSafeInteger(m.index) || m.index < 0 || !Number.isSafeInteger(m.commit)) {
    return false;
  }
  let prevTerm = m.logTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    if (e.index !== m.index + 1 + i || e.term < prevTerm || e.term > m.term) return false;
    prevTerm = e.term;
  }
  return m.logTerm <= m.term;
}

/** Appends a leader's entries to this follower's log and answers. */
export function handleAppend(rs: RaftState, m: AppendMsg): void {
  const l = rs.raftLog;
  if (!validAppend(m)) {
    rs.log.warn("raft: dropping malformed append", { from: m.from, index: m.index });
    return;
  }
  const resp = (index: number, reject: boolean, hint = 0, hintTerm = 0): void =>
    send(rs, {
      type: "app_resp",
      from: rs.id,
      to: m.from,
      term: rs.term,
      index,
      reject,
      rejectHint: hint,
      logTerm: hintTerm,
    });
  if (m.index < l.committed) {
    resp(l.committed, false);
    return;
  }
  const last = l.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (last !== undefined) {
    resp(last, false);
    return;
  }
  const hint = l.findConflictByTerm(Math.min(m.index, l.lastIndex()), m.logTerm);
  resp(m.index, true, hint.index, hint.term);
}

/** Takes a heartbeat's commit index and answers it. */
export function handleHeartbeat(rs: RaftState, m: HeartbeatMsg): void {
  const l = rs.raftLog;
  if (Number.isSafeInteger(m.commit) && m.commit <= l.lastIndex()) l.commitTo(m.commit);
  send(rs, { type: "heartbeat_resp", from: rs.id, to: m.from, term: rs.term, ctx: m.ctx });
}

/** Restores a leader's snapshot unless this log already covers it, and answers. */
export function handleSnapshot(rs: RaftState, m: SnapshotMsg): void {
  const l = rs.raftLog;
  const s = m.snapshot;
  const resp = (index: number): void =>
    send(rs, {
      type: "app_resp",
      from: rs.id,
      to: m.from,
      term: rs.term,
      index,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    });
  if (
    !Number.isSafeInteger(s.meta.index) || s.meta.term > m.term || s.meta.conf.voters.length === 0
  ) {
    rs.log.warn("raft: dropping malformed snapshot", { from: m.from, index: s.meta.index });
    return;
  }
  if (s.meta.index <= l.committed) {
    resp(l.committed);
    return;
  }
  if (l.matchTerm(s.meta.index, s.meta.term)) {
    // We already hold that entry: just fast-forward the commit.
    l.commitTo(s.meta.index);
    resp(l.committed);
    return;
  }
  rs.log.info("raft: restoring snapshot", {
    index: s.meta.index,
    term: s.meta.term,
    from: m.from,
  });
  l.restore(s);
  setConf(rs, s.meta.conf);
  rs.confAppliedThrough = s.meta.index;
  rs.confHistory = [{ index: s.meta.index, conf: cloneConf(s.meta.conf) }];
  resp(l.lastIndex());
}
