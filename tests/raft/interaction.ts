/**
 * An interaction environment for text-scripted Raft tests, in the spirit of etcd-io/raft's
 * `rafttest`: a handful of nodes, an explicit message queue and commands that print what
 * happened.
 * @module
 */
import { type NodeId, nodeId } from "../../common/ids.ts";
import { type ConfChange, MemoryStorage, type Message, RaftNode } from "../../control/raft/mod.ts";
import { formatConf, formatEntry, formatMessage, formatReady } from "./format.ts";

/** Rounds of `stabilize` before giving up: a livelock in a script is a bug. */
const STABILIZE_ROUNDS_MAX = 500;

type _Node = {
  node: RaftNode;
  storage: MemoryStorage;
  sm: string[];
  opts: _NodeOpts;
  /** What the node's random source returns: its next timeout is `election × (1 + jitter)`. */
  jitter: { v: number };
};
type _NodeOpts = {
  preVote: boolean;
  checkQuorum: boolean;
  maxInflight: number;
  maxEntries: number;
  electionTicks: number;
  heartbeatTicks: number;
  rankedTimeouts: boolean;
};

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** A parsed command line: name, positional args and key=value args. */
export type Command = { name: string; args: string[]; kv: Map<string, string> };

/** Parses `name a b k=v k2=(x,y)`. */
export function parseCommand(line: string): Command {
  const toks = line.trim().split(/\s+/);
  const name = toks.shift() ?? "";
  const args: string[] = [];
  const kv = new Map<string, string>();
  for (const t of toks) {
    const eq = t.indexOf("=");
    if (eq > 0) kv.set(t.slice(0, eq), t.slice(eq + 1));
    else args.push(t);
  }
  return { name, args, kv };
}

function _list(v: string | undefined): string[] {
  if (!v) return [];
  return v.replace(/^\(|\)$/g, "").split(",").filter((s) => s.length > 0);
}

/** The environment a script runs against. */
export class InteractionEnv {
  readonly nodes = new Map<string, _Node>();
  queue: Message[] = [];
  readonly partitioned = new Set<string>();
  #out: string[] = [];

  /** Runs one command and returns its transcript. */
  run(cmd: Command): string {
    this.#out = [];
    switch (cmd.name) {
      case "add-nodes":
        this.#addNodes(cmd);
        break;
      case "campaign":
        this.#get(cmd.args[0]).node.campaign();
        break;
      case "propose": {
        const r = this.#get(cmd.args[0]).node.propose(_enc.encode(cmd.args[1] ?? ""));
        this.#out.push(JSON.stringify(r));
        break;
      }
      case "propose-conf-change": {
        const cc: ConfChange = {
          op: cmd.args[1] as ConfChange["op"],
          node: nodeId(cmd.args[2] ?? ""),
        };
        this.#out.push(JSON.stringify(this.#get(cmd.args[0]).node.proposeConfChange(cc)));
        break;
      }
      case "add-learner":
      case "promote":
      case "remove": {
        // Shorthands that propose at whichever node is currently leader.
        const leader = [...this.nodes.entries()].find(([, n]) => n.node.status().role === "leader");
        if (!leader) throw new Error(`${cmd.name}: no leader`);
        const op = cmd.name === "add-learner" ? "add_learner" : cmd.name;
        const cc: ConfChange = { op: op as ConfChange["op"], node: nodeId(cmd.args[0] ?? "") };
        this.#out.push(`${leader[0]}: ${JSON.stringify(leader[1].node.proposeConfChange(cc))}`);
        break;
      }
      case "transfer-leader":
        this.#get(cmd.args[0]).node.transferLeadership(nodeId(cmd.args[1] ?? ""));
        break;
      case "read-index":
        this.#get(cmd.args[0]).node.readIndex(cmd.args[1] ?? "");
        break;
      case "set-jitter":
        // Takes effect at the node's next reset (a term or role change).
        this.#get(cmd.args[0]).jitter.v = Number(cmd.args[1] ?? "0");
        break;
      case "tick": {
        const n = Number(cmd.args[1] ?? "1");
        const nd = this.#get(cmd.args[0]);
        for (let i = 0; i < n; i++) nd.node.tick();
        break;
      }
      case "tick-election":
      case "tick-heartbeat": {
        for (const id of cmd.args) {
          const nd = this.#get(id);
          const n = cmd.name === "tick-election" ? nd.opts.electionTicks : nd.opts.heartbeatTicks;
          for (let i = 0; i < n; i++) nd.node.tick();
        }
        break;
      }
      case "process-ready":
        for (const id of cmd.args) this.#processReady(id);
        break;
      case "deliver-msgs":
        this.#deliver(cmd.args, new Set(_list(cmd.kv.get("drop"))));
        break;
      case "stabilize":
        this.#stabilize(cmd.args.length > 0 ? cmd.args : [...this.nodes.keys()]);
        break;
      case "partition":
        for (const id of cmd.args) this.partitioned.add(id);
        break;
      case "heal":
        this.partitioned.clear();
        break;
      case "compact": {
        const nd = this.#get(cmd.args[0]);
        const index = Number(cmd.args[1]);
        const st = nd.node.status();
        const upto = nd.sm.slice(0, nd.sm.length - (st.applied - index));
        nd.node.compact(index, _enc.encode(JSON.stringify(upto)));
        this.#out.push(`first-index=${nd.storage.firstIndex()}`);
        break;
      }
      case "restart": {
        const id = cmd.args[0] ?? "";
        const old = this.#get(id);
        const snap = old.storage.snapshot();
        const sm = snap.data.length > 0 ? JSON.parse(_dec.decode(snap.data)) as string[] : [];
        this.nodes.set(id, {
          ...old,
          node: this.#newNode(id, old.storage, old.opts, old.jitter),
          sm,
        });
        break;
      }
      case "status":
        for (const id of cmd.args.length > 0 ? cmd.args : [...this.nodes.keys()]) {
          this.#out.push(this.#statusLine(id));
        }
        break;
      case "raft-log": {
        const nd = this.#get(cmd.args[0]);
        const st = nd.node.status();
        const ents = nd.storage.lastIndex() >= nd.storage.firstIndex()
          ? nd.storage.entries(nd.storage.firstIndex(), nd.storage.lastIndex() + 1)
          : [];
        this.#out.push(
          `snapshot=${nd.storage.snapshot().meta.term}/${nd.storage.snapshot().meta.index}`,
        );
        for (const e of ents) this.#out.push(formatEntry(e));
        this.#out.push(`commit=${st.commit} applied=${st.applied}`);
        break;
      }
      case "state-machine":
        for (const id of cmd.args) this.#out.push(`${id}: [${this.#get(id).sm.join(",")}]`);
        break;
      default:
        throw new Error(`unknown command ${JSON.stringify(cmd.name)}`);
    }
    return this.#out.length > 0 ? this.#out.join("\n") : "ok";
  }

  #get(id: string | undefined): _Node {
    const n = this.nodes.get(id ?? "");
    if (!n) throw new Error(`no node ${JSON.stringify(id)}`);
    return n;
  }

  #newNode(id: string, storage: MemoryStorage, o: _NodeOpts, jitter: { v: number }): RaftNode {
    return new RaftNode({
      id: nodeId(id),
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      maxInflightMsgs: o.maxInflight,
      maxEntriesPerMsg: o.maxEntries,
      rankedTimeouts: o.rankedTimeouts,
      // The minimum timeout unless a script sets a jitter, so `tick-election` is one timeout.
      random: () => jitter.v,
      storage,
    });
  }

  #addNodes(cmd: Command): void {
    const n = Number(cmd.args[0]);
    const opts: _NodeOpts = {
      preVote: cmd.kv.get("prevote") === "true",
      checkQuorum: cmd.kv.get("checkquorum") === "true",
      maxInflight: Number(cmd.kv.get("max-inflight") ?? "256"),
      maxEntries: Number(cmd.kv.get("max-entries") ?? "100"),
      electionTicks: Number(cmd.kv.get("election") ?? "10"),
      heartbeatTicks: Number(cmd.kv.get("heartbeat") ?? "1"),
      rankedTimeouts: cmd.kv.get("ranked") === "true",
    };
    const founding = this.nodes.size === 0;
    const base = this.nodes.size;
    const ids: NodeId[] = [];
    for (let i = 1; i <= n; i++) ids.push(nodeId(String(base + i)));
    for (const id of ids) {
      const storage = founding
        ? MemoryStorage.bootstrap({ voters: ids, learners: [] })
        : new MemoryStorage();
      const jitter = { v: 0 };
      this.nodes.set(id, {
        node: this.#newNode(id, storage, opts, jitter),
        storage,
        sm: [],
        opts,
        jitter,
      });
      this.#out.push(this.#statusLine(id));
    }
  }

  #statusLine(id: string): string {
    const s = this.#get(id).node.status();
    return `${id}: ${s.role} term=${s.term} vote=${s.vote ?? "none"} leader=${
      s.leader ?? "none"
    } ` +
      `commit=${s.commit} applied=${s.applied} last=${s.lastIndex} ${formatConf(s.conf)}`;
  }

  #processReady(id: string): boolean {
    const nd = this.#get(id);
    if (!nd.node.hasReady()) return false;
    const rd = nd.node.ready();
    this.#out.push(`> ${id} handling Ready`);
    this.#out.push(...formatReady(rd));
    if (rd.snapshot) {
      nd.storage.applySnapshot(rd.snapshot);
      nd.sm = rd.snapshot.data.length > 0
        ? JSON.parse(_dec.decode(rd.snapshot.data)) as string[]
        : [];
    }
    nd.storage.append(rd.entries);
    if (rd.hardState) nd.storage.setHardState(rd.hardState);
    for (const m of rd.messages) {
      if (!this.partitioned.has(m.from) && !this.partitioned.has(m.to)) this.queue.push(m);
    }
    for (const e of rd.committedEntries) {
      if (e.type === "normal" && e.data.length > 0) nd.sm.push(_dec.decode(e.data));
    }
    nd.node.advance();
    return true;
  }

  #deliver(ids: string[], drop: Set<string>): boolean {
    const targets = new Set(ids.length > 0 ? ids : [...this.nodes.keys()]);
    const keep: Message[] = [];
    const byNode = new Map<string, Message[]>();
    for (const m of this.queue) {
      if (!targets.has(m.to)) keep.push(m);
      else if (drop.has(m.to)) this.#out.push(`dropped: ${formatMessage(m)}`);
      else byNode.set(m.to, [...(byNode.get(m.to) ?? []), m]);
    }
    this.queue = keep;
    let any = false;
    for (const id of [...targets].sort()) {
      const msgs = byNode.get(id) ?? [];
      if (msgs.length === 0) continue;
      any = true;
      this.#out.push(`> ${id} receiving messages`);
      for (const m of msgs) {
        this.#out.push(`  ${formatMessage(m)}`);
        if (this.partitioned.has(m.to) || this.partitioned.has(m.from)) {
          this.#out.push(`  (dropped by partition)`);
          continue;
        }
        this.#get(id).node.step(m);
      }
    }
    return any;
  }

  #stabilize(ids: string[]): void {
    for (let round = 0; round < STABILIZE_ROUNDS_MAX; round++) {
      let any = false;
      for (const id of ids) any = this.#processReady(id) || any;
      any = this.#deliver(ids, new Set()) || any;
      if (!any) return;
    }
    throw new Error(`stabilize did not converge within ${STABILIZE_ROUNDS_MAX} rounds`);
  }
}
