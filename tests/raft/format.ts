/**
 * Human-readable one-line renderings of Raft values for test transcripts and sim traces.
 * @module
 */
import {
  type ConfState,
  decodeConfChange,
  type Entry,
  type Message,
  type Ready,
} from "../../control/raft/mod.ts";

const _dec = new TextDecoder();

/** Renders an entry as `term/index type "data"`. */
export function formatEntry(e: Entry): string {
  if (e.type === "conf") {
    try {
      const cc = decodeConfChange(e.data);
      return `${e.term}/${e.index} conf ${cc.op} ${cc.node}`;
    } catch {
      return `${e.term}/${e.index} conf <bad>`;
    }
  }
  return `${e.term}/${e.index} normal ${JSON.stringify(_dec.decode(e.data))}`;
}

/** Renders a membership as `voters=(1,2,3) learners=(4)`. */
export function formatConf(c: ConfState): string {
  return `voters=(${c.voters.join(",")}) learners=(${c.learners.join(",")})`;
}

/** Renders a message on one line. */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case "app":
      return `${head} log=${m.logTerm}/${m.index} commit=${m.commit} entries=[${
        m.entries.map(formatEntry).join(", ")
      }]`;
    case "app_resp":
      return m.reject
        ? `${head} reject index=${m.index} hint=${m.logTerm}/${m.rejectHint}`
        : `${head} index=${m.index}`;
    case "vote":
    case "pre_vote":
      return `${head} log=${m.logTerm}/${m.index}${m.transfer ? " transfer" : ""}`;
    case "vote_resp":
    case "pre_vote_resp":
      return `${head}${m.reject ? " reject" : ""}`;
    case "heartbeat":
      return `${head} commit=${m.commit}${m.ctx ? ` ctx=${m.ctx}` : ""}`;
    case "heartbeat_resp":
      return `${head}${m.ctx ? ` ctx=${m.ctx}` : ""}`;
    case "snap":
      return `${head} snapshot=${m.snapshot.meta.term}/${m.snapshot.meta.index} ${
        formatConf(m.snapshot.meta.conf)
      }`;
    case "timeout_now":
      return head;
    case "transfer_leader":
      return `${head} target=${m.target}`;
    case "read_index":
      return `${head} ctx=${m.ctx}`;
    case "read_index_resp":
      return `${head} ctx=${m.ctx} index=${m.index}${m.reject ? " reject" : ""}`;
  }
}

/** Renders a Ready as indented lines. */
export function formatReady(rd: Ready): string[] {
  const out: string[] = [];
  if (rd.softState) {
    out.push(`  State: role=${rd.softState.role} leader=${rd.softState.leader ?? "none"}`);
  }
  if (rd.hardState) {
    const h = rd.hardState;
    out.push(`  HardState term=${h.term} vote=${h.vote ?? "none"} commit=${h.commit}`);
  }
  if (rd.snapshot) {
    const s = rd.snapshot.meta;
    out.push(`  Snapshot ${s.term}/${s.index} ${formatConf(s.conf)}`);
  }
  if (rd.entries.length > 0) {
    out.push("  Entries:");
    for (const e of rd.entries) out.push(`    ${formatEntry(e)}`);
  }
  if (rd.committedEntries.length > 0) {
    out.push("  CommittedEntries:");
    for (const e of rd.committedEntries) out.push(`    ${formatEntry(e)}`);
  }
  if (rd.messages.length > 0) {
    out.push("  Messages:");
    for (const m of rd.messages) out.push(`    ${formatMessage(m)}`);
  }
  for (const r of rd.readStates) out.push(`  ReadState index=${r.index} ctx=${r.ctx}`);
  for (const r of rd.readFailures) out.push(`  ReadFailure ctx=${r.ctx} reason=${r.reason}`);
  for (const d of rd.voteDecisions) {
    out.push(`  Vote ${d.type} from=${d.candidate} term=${d.term} ${d.outcome} (${d.reason})`);
  }
  return out;
}
