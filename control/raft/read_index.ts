/**
 * Linearizable reads by read index: the leader confirms it still leads with a heartbeat round
 * before answering with its commit index; reads arriving before a fresh leader committed in its
 * term wait for that.
 * @module
 */
import type { NodeId } from "../../common/ids.ts";
import { type RaftState, send } from "./raft_state.ts";
import { bcastHeartbeat } from "./replication.ts";
import type { Message, ReadFailure } from "./types.ts";

/** Refuses a read-index request this node cannot serve. */
export function rejectReadIndex(rs: RaftState, m: Extract<Message, { type: "read_index" }>): void {
  send(rs, {
    type: "read_index_resp",
    from: rs.id,
    to: m.from,
    term: rs.term,
    ctx: m.ctx,
    index: 0,
    reject: true,
  });
}

/** Whether this leader has committed an entry of its own term yet. */
export function committedInTerm(rs: RaftState): boolean {
  return rs.raftLog.term(rs.raftLog.committed) === rs.term;
}

/** Starts (or defers, or refuses) a read-index request on the leader. */
export function leaderReadIndex(rs: RaftState, ctx: string, from: NodeId): void {
  if (rs.reads.size + rs.deferredReads.length >= rs.cfg.maxPendingReads) {
    failRead(rs, ctx, from, "overloaded");
    return;
  }
  if (!committedInTerm(rs)) {
    // The commit index of a fresh leader may lag the true one until it commits its no-op.
    rs.deferredReads.push({ ctx, from });
    return;
  }
  const index = rs.raftLog.committed;
  if (rs.voters.length === 1) {
    answerRead(rs, ctx, index, from);
    return;
  }
  if (rs.reads.has(ctx)) return;
  rs.reads.set(ctx, { ctx, index, from, acks: new Set([rs.id]) });
  rs.readQueue.push(ctx);
  bcastHeartbeat(rs, ctx);
}

/** Serves the reads deferred until this leader committed in its term. */
export function releaseDeferredReads(rs: RaftState): void {
  if (rs.deferredReads.length === 0 || !committedInTerm(rs)) return;
  const d = rs.deferredReads;
  rs.deferredReads = [];
  for (const r of d) leaderReadIndex(rs, r.ctx, r.from);
}

/** Answers a confirmed read: a ReadState here, or a response to the follower that asked. */
export function answerRead(rs: RaftState, ctx: string, index: number, from: NodeId): void {
  if (from === rs.id) rs.readStates.push({ index, ctx });
  else {
    send(rs, {
      type: "read_index_resp",
      from: rs.id,
      to: from,
      term: rs.term,
      ctx,
      index,
      reject: false,
    });
  }
}

/** Fails a read: a ReadFailure here, or a rejecting response to the follower that asked. */
export function failRead(
  rs: RaftState,
  ctx: string,
  from: NodeId,
  reason: ReadFailure["reason"],
): void {
  if (from === rs.id) rs.readFailures.push({ ctx, reason });
  else {
    send(rs, {
      type: "read_index_resp",
      from: rs.id,
      to: from,
      term: rs.term,
      ctx,
      index: 0,
      reject: true,
    });
  }
}

/** Fails every pending read (the node is leaving the leader role). */
export function failPendingReads(rs: RaftState): void {
  for (const r of rs.reads.values()) failRead(rs, r.ctx, r.from, "stepped_down");
  for (const r of rs.deferredReads) failRead(rs, r.ctx, r.from, "stepped_down");
  rs.reads.clear();
  rs.readQueue = [];
  rs.deferredReads = [];
}
