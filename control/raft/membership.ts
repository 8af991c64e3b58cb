/**
 * Single-server membership changes: validating a proposed change and applying committed conf
 * entries to the voters, learners and the leader's progress.
 * @module
 */
import { decodeConfChange, encodeConfChange, RaftCodecError } from "./codec.ts";
import { Progress } from "./progress.ts";
import { assert } from "./raft_log.ts";
import { peers, type RaftState, setConf } from "./raft_state.ts";
import {
  appendProposal,
  bcastAppend,
  maybeCommit,
  refuseProposal,
  sendAppend,
} from "./replication.ts";
import { becomeFollower } from "./election.ts";
import type { ConfChange, Entry, ProposeResult } from "./types.ts";

/** Proposes a single-server membership change; one may be pending at a time. */
export function proposeConfChange(rs: RaftState, cc: ConfChange): ProposeResult {
  const refused = refuseProposal(rs);
  if (refused) return refused;
  if (rs.pendingConfIndex > rs.raftLog.applied) {
    return {
      ok: false,
      reason: "conf_change_pending",
      detail:
        `conf change at index ${rs.pendingConfIndex} is not applied yet (applied ${rs.raftLog.applied})`,
    };
  }
  const isVoter = rs.voters.includes(cc.node);
  const isLearner = rs.learners.includes(cc.node);
  switch (cc.op) {
    case "add_learner":
      if (isVoter || isLearner) {
        return {
          ok: false,
          reason: "invalid_conf_change",
          detail: `${cc.node} is already a member`,
        };
      }
      break;
    case "promote": {
      if (!isLearner) {
        return {
          ok: false,
          reason: "invalid_conf_change",
          detail: `${cc.node} is not a learner`,
        };
      }
      const pr = rs.progress.get(cc.node);
      const lag = rs.raftLog.lastIndex() - (pr?.match ?? 0);
      if (!pr || pr.state !== "replicate" || lag > rs.cfg.promoteLagEntriesMax) {
        return {
          ok: false,
          reason: "learner_behind",
          detail:
            `learner ${cc.node} is ${lag} entries behind (state ${pr?.state}), limit ${rs.cfg.promoteLagEntriesMax}`,
        };
      }
      break;
    }
    case "remove":
      if (!isVoter && !isLearner) {
        return { ok: false, reason: "invalid_conf_change", detail: `${cc.node} is not a member` };
      }
      if (isVoter && rs.voters.length === 1) {
        return {
          ok: false,
          reason: "invalid_conf_change",
          detail: `cannot remove the last voter ${cc.node}`,
        };
      }
      break;
  }
  const r = appendProposal(rs, "conf", encodeConfChange(cc));
  if (r.ok) rs.pendingConfIndex = r.index;
  return r;
}

/** Applies the membership of every conf entry up to `index` not applied yet. */
export function applyConfEntriesThrough(rs: RaftState, index: number): void {
  const from = rs.confAppliedThrough + 1;
  if (index < from) return;
  const l = rs.raftLog;
  for (let lo = from; lo <= index;) {
    const ents = l.slice(lo, index + 1, rs.cfg.maxCommittedPerReady);
    assert(ents !== undefined && ents.length > 0, () => `entries ${lo}..${index} unavailable`);
    for (const e of ents) if (e.type === "conf") applyConfEntry(rs, e);
    lo += ents.length;
  }
  rs.confAppliedThrough = index;
}

/** Applies one committed conf entry to the membership (and the leader's progress). */
export function applyConfEntry(rs: RaftState, e: Entry): void {
  let cc: ConfChange;
  try {
    cc = decodeConfChange(e.data);
  } catch (err) {
    if (err instanceof RaftCodecError) {
      // Committed bytes are what they are; a bad one is skipped identically on every node.
      rs.log.error("raft: skipping undecodable conf entry", { index: e.index, error: err });
      return;
    }
    throw err;
  }
  const voters = new Set(rs.voters);
  const learners = new Set(rs.learners);
  switch (cc.op) {
    case "add_learner":
      if (!voters.has(cc.node)) learners.add(cc.node);
      break;
    case "promote":
      if (learners.delete(cc.node)) voters.add(cc.node);
      break;
    case "remove":
      voters.delete(cc.node);
      learners.delete(cc.node);
      break;
  }
  if (voters.size === 0) {
    rs.log.error("raft: ignoring conf change that would leave no voters", { index: e.index });
    return;
  }
  setConf(rs, { voters: [...voters], learners: [...learners] });
  rs.confHistory.push({
    index: e.index,
    conf: { voters: [...rs.voters], learners: [...rs.learners] },
  });
  rs.log.info("raft: applied conf change", { index: e.index, op: cc.op, node: cc.node });
  if (rs.role !== "leader") return;
  const last = rs.raftLog.lastIndex();
  for (const v of rs.voters) {
    const pr = rs.progress.get(v);
    if (pr) pr.learner = false;
    else rs.progress.set(v, new Progress(last + 1, rs.cfg.maxInflightMsgs, false));
  }
  for (const v of rs.learners) {
    if (!rs.progress.has(v)) {
      const pr = new Progress(last + 1, rs.cfg.maxInflightMsgs, true);
      pr.recentActive = true;
      rs.progress.set(v, pr);
    }
  }
  for (const id of [...rs.progress.keys()]) {
    if (!voters.has(id) && !learners.has(id)) rs.progress.delete(id);
  }
  if (rs.leadTransferee !== null && !voters.has(rs.leadTransferee)) {
    rs.leadTransferee = null;
  }
  if (!voters.has(rs.id)) {
    rs.log.info("raft: removed from the cluster: stepping down", { term: rs.term });
    becomeFollower(rs, rs.term, null);
    return;
  }
  if (maybeCommit(rs)) bcastAppend(rs);
  else for (const id of peers(rs)) sendAppend(rs, id);
}
