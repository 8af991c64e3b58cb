/**
 * A seeded, deterministic cluster simulator for the Raft core (TigerBeetle VOPR style).
 *
 * One seed drives everything: cluster size, options, network loss/duplication/reordering/
 * delay, partitions, crashes (losing unsynced writes, possibly torn), restarts, membership
 * changes, compactions and client traffic. Safety invariants are checked after every tick;
 * a liveness phase then heals all faults and requires progress within a tick cap; finally
 * the client history is checked for linearizability.
 * @module
 */
import { type NodeId, nodeId } from "../../common/ids.ts";
import {
  type ConfChange,
  decodeConfChange,
  decodeMessage,
  encodeMessage,
  type Entry,
  MemoryStorage,
  type Message,
  RaftNode,
  type Ready,
} from "../../control/raft/mod.ts";
import { formatEntry, formatMessage } from "./format.ts";
import { checkLinearizable, type Op } from "./linearizability.ts";

/** Deliberate bugs, to prove the checkers can fail. */
export type SimBug = "none" | "forget_vote_on_restart" | "skip_log_matching" | "stale_local_reads";

/** Options of one run. */
export type SimOptions = {
  seed: number;
  /** Ticks of the fault-injecting safety phase. @default 600 */
  safetyTicks?: number;
  /** Tick cap of the liveness phase. @default 400 */
  livenessTicksMax?: number;
  /** Record every message in the trace (slower; used when re-running a failing seed). */
  traceMessages?: boolean;
  /** Lines of trace kept. @default 400 */
  traceLinesMax?: number;
  /** Injected bug. @default "none" */
  bug?: SimBug;
  /** Fault intensity multiplier. @default 1 */
  faultScale?: number;
};

/** Counters proving a run exercised what it claims to. */
export type SimStats = {
  ticks: number;
  committed: number;
  ops: number;
  reads: number;
  leaders: number;
  crashes: number;
  snapshotsInstalled: number;
  confChangesApplied: number;
  transfers: number;
};

/** Outcome of one run. */
export type SimResult = {
  ok: boolean;
  seed: number;
  error?: string;
  trace: string[];
  stats: SimStats;
};

/** A small fast PRNG (sfc32) seeded through splitmix32. */
export function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  const mix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = mix(), b = mix(), c = mix(), d = mix();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

class SimFailure extends Error {}

type _SimNode = {
  id: NodeId;
  storage: MemoryStorage;
  node: RaftNode | null;
  restartAt: number;
  rng: () => number;
  kv: Map<string, string>;
  applied: number;
  /** Read ctx → confirmed index awaiting apply. */
  reads: Map<string, number>;
};

type _Pending = {
  op: Op;
  node: NodeId;
  deadline: number;
  index?: number;
  term?: number;
  ctx?: string;
};

type _Cmd = { k: string; v: string; op: number };

const _enc = new TextEncoder();
const _dec = new TextDecoder();
const KEYS = ["a", "b", "c"];
const CLIENTS = 3;
/** Ticks a client waits before giving up on an operation. */
const CLIENT_TIMEOUT_TICKS = 80;
/** Ready rounds per node per tick; a node that never quiesces is a bug. */
const READY_ROUNDS_MAX = 64;

/** Runs one seed. */
export function runSim(opts: SimOptions): SimResult {
  const sim = new _Sim(opts);
  try {
    sim.run();
    return { ok: true, seed: opts.seed, trace: sim.traceLines(), stats: sim.stats() };
  } catch (e) {
    const msg = e instanceof SimFailure ? e.message : `exception: ${(e as Error).stack ?? e}`;
    sim.trace(`FAILED: ${msg}`);
    return { ok: false, seed: opts.seed, error: msg, trace: sim.traceLines(), stats: sim.stats() };
  }
}

class _Sim {
  readonly rng: () => number;
  readonly o: Required<SimOptions>;
  now = 0;
  nodes = new Map<NodeId, _SimNode>();
  ids: NodeId[] = [];
  net: { at: number; bytes: Uint8Array; seq: number }[] = [];
  seq = 0;
  /** Partition groups: a message passes only when both ends share a group. */
  group = new Map<NodeId, number>();
  // Per-seed configuration.
  n: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxInflight: number;
  maxEntries: number;
  electionTicks: number;
  /** Whether followers get one append per Ready (see `RaftConfig.coalesceAppends`). */
  coalesceAppends: boolean;
  /** Whether followers' first timeouts are ranked (see `RaftConfig.rankedTimeouts`). */
  rankedTimeouts: boolean;
  heartbeatTicks: number;
  dropRate: number;
  dupRate: number;
  delayMax: number;
  crashRate: number;
  tornRate: number;
  partitionRate: number;
  compactRate: number;
  confRate: number;
  opRate: number;
  leaderFaultRate: number;
  voteCrashRate: number;
  // Invariant state.
  leaderOfTerm = new Map<number, NodeId>();
  entryAt = new Map<string, string>();
  appliedAt = new Map<number, string>();
  maxApplied = 0;
  // Clients.
  history: Op[] = [];
  pending = new Map<number, _Pending>();
  clientBusy = new Set<number>();
  opSeq = 0;
  faultsOn = true;
  crashes = 0;
  snapshotsInstalled = 0;
  confChangesApplied = 0;
  transfers = 0;
  #trace: string[] = [];

  constructor(opts: SimOptions) {
    this.o = {
      seed: opts.seed,
      safetyTicks: opts.safetyTicks ?? 600,
      livenessTicksMax: opts.livenessTicksMax ?? 400,
      traceMessages: opts.traceMessages ?? false,
      traceLinesMax: opts.traceLinesMax ?? 400,
      bug: opts.bug ?? "none",
      faultScale: opts.faultScale ?? 1,
    };
    const r = this.rng = makeRng(opts.seed);
    const f = this.o.faultScale;
    this.n = r() < 0.5 ? 3 : 5;
    this.preVote = r() < 0.7;
    this.checkQuorum = r() < 0.7;
    this.maxInflight = [1, 2, 4, 64][Math.floor(r() * 4)]!;
    this.maxEntries = [1, 3, 16][Math.floor(r() * 3)]!;
    this.electionTicks = 10;
    // Half the seeds batch appends per Ready as skein control nodes do; the other half send
    // one per event. Taken from the seed, not the PRNG, so the other draws stay as they were.
    this.coalesceAppends = (this.o.seed & 1) === 0;
    // Half the seeds rank followers' first timeouts as control nodes do (again from the seed).
    this.rankedTimeouts = (this.o.seed & 2) === 0;
    this.heartbeatTicks = 1 + Math.floor(r() * 3);
    this.dropRate = r() * 0.15 * f;
    this.dupRate = r() * 0.05 * f;
    this.delayMax = 1 + Math.floor(r() * 6);
    this.crashRate = r() * 0.01 * f;
    this.tornRate = r() * 0.02 * f;
    this.partitionRate = r() * 0.01 * f;
    this.compactRate = r() * 0.01;
    this.confRate = r() * 0.01;
    this.opRate = 0.2 + r() * 0.5;
    this.leaderFaultRate = r() * 0.01 * f;
    this.voteCrashRate = r() * 0.1 * f;
    const voters: NodeId[] = [];
    for (let i = 1; i <= this.n + 1; i++) {
      const id = nodeId(`n${i}`);
      this.ids.push(id);
      if (i <= this.n) voters.push(id);
    }
    for (const id of this.ids) {
      // The spare node starts empty and can only join through a membership change.
      const storage = voters.includes(id)
        ? MemoryStorage.bootstrap({ voters, learners: [] }, _enc.encode(JSON.stringify({ kv: [] })))
        : new MemoryStorage();
      const sn: _SimNode = {
        id,
        storage,
        node: null,
        restartAt: 0,
        rng: makeRng((opts.seed * 31 + this.ids.indexOf(id) * 7919) >>> 0),
        kv: new Map(),
        applied: 0,
        reads: new Map(),
      };
      this.nodes.set(id, sn);
      this.#start(sn);
      this.group.set(id, 0);
    }
    this.trace(
      `seed=${opts.seed} n=${this.n} prevote=${this.preVote} checkquorum=${this.checkQuorum} ` +
        `inflight=${this.maxInflight} entries=${this.maxEntries} hb=${this.heartbeatTicks} ` +
        `drop=${this.dropRate.toFixed(3)} dup=${this.dupRate.toFixed(3)} delay<=${this.delayMax} ` +
        `crash=${this.crashRate.toFixed(4)} torn=${this.tornRate.toFixed(3)} ` +
        `partition=${this.partitionRate.toFixed(4)} bug=${this.o.bug}`,
    );
  }

  trace(line: string): void {
    this.#trace.push(`t=${this.now} ${line}`);
    if (this.#trace.length > this.o.traceLinesMax * 2) {
      this.#trace = this.#trace.slice(-this.o.traceLinesMax);
    }
  }

  traceLines(): string[] {
    return this.#trace.slice(-this.o.traceLinesMax);
  }

  stats(): SimStats {
    return {
      ticks: this.now,
      committed: this.maxApplied,
      ops: this.history.length,
      reads: this.history.filter((o) => o.kind === "read").length,
      leaders: this.leaderOfTerm.size,
      crashes: this.crashes,
      snapshotsInstalled: this.snapshotsInstalled,
      confChangesApplied: this.confChangesApplied,
      transfers: this.transfers,
    };
  }

  fail(msg: string): never {
    throw new SimFailure(msg);
  }

  #start(sn: _SimNode): void {
    if (this.o.bug === "forget_vote_on_restart" && sn.node === null && this.now > 0) {
      sn.storage.setHardState({ ...sn.storage.hardState(), vote: null });
    }
    sn.node = new RaftNode({
      id: sn.id,
      electionTicks: this.electionTicks,
      heartbeatTicks: this.heartbeatTicks,
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      maxInflightMsgs: this.maxInflight,
      maxEntriesPerMsg: this.maxEntries,
      coalesceAppends: this.coalesceAppends,
      rankedTimeouts: this.rankedTimeouts,
      random: sn.rng,
      storage: sn.storage,
    });
    const snap = sn.storage.snapshot();
    sn.kv = this.#decodeSm(snap.data);
    sn.applied = snap.meta.index;
    sn.reads.clear();
  }

  #decodeSm(data: Uint8Array): Map<string, string> {
    if (data.length === 0) return new Map();
    const o = JSON.parse(_dec.decode(data)) as { kv: [string, string][] };
    return new Map(o.kv);
  }

  #crash(sn: _SimNode, why: string, downTicks?: number): void {
    if (!sn.node) return;
    sn.node = null;
    // Half the restarts are quick (a supervisor restarting the process), half slow.
    const down = downTicks ??
      (this.rng() < 0.5 ? 1 + Math.floor(this.rng() * 3) : 1 + Math.floor(this.rng() * 60));
    sn.restartAt = this.now + down;
    this.crashes++;
    this.trace(`${sn.id} crashed (${why}), restarts at t=${sn.restartAt}`);
    // Outstanding client operations through this node now have unknown outcomes.
    for (const [id, p] of this.pending) if (p.node === sn.id) this.#timeoutOp(id, p);
  }

  run(): void {
    for (; this.now < this.o.safetyTicks; this.now++) this.#tick();
    this.#livenessPhase();
    for (const [id, p] of this.pending) this.#timeoutOp(id, p);
    const res = checkLinearizable(this.history);
    if (!res.ok) {
      for (const op of res.ops) {
        this.trace(
          `history ${op.key} c${op.client} ${op.kind} ${op.value} [${op.invoke}, ${op.response}]`,
        );
      }
      this.fail(`history is not linearizable on key ${res.key}: ${res.reason}`);
    }
  }

  #livenessPhase(): void {
    this.faultsOn = false;
    this.trace("liveness phase: healing all faults");
    for (const id of this.ids) this.group.set(id, 0);
    const conf = this.#committedMembers();
    for (const sn of this.nodes.values()) {
      if (!conf.has(sn.id)) {
        // Operators shut removed nodes down; a stale one must not stall the others.
        if (sn.node) this.trace(`${sn.id} is not a member: shutting it down`);
        sn.node = null;
        sn.restartAt = Infinity;
      } else if (!sn.node) {
        this.#start(sn);
        this.trace(`${sn.id} restarted for liveness`);
      }
    }
    const start = this.now;
    const marker = `live-${this.o.seed}`;
    let proposed: { node: NodeId; index: number; term: number } | null = null;
    while (this.now - start < this.o.livenessTicksMax) {
      this.#tick();
      this.now++;
      if (proposed) {
        const sn = this.nodes.get(proposed.node)!;
        if (sn.applied >= proposed.index) {
          const got = this.appliedAt.get(proposed.index);
          if (got === `${proposed.term}|${marker}`) {
            this.trace(`liveness ok after ${this.now - start} ticks`);
            return;
          }
          proposed = null;
        } else if (sn.node?.status().role !== "leader" || sn.node.status().term !== proposed.term) {
          // That leader lost its term; its proposal may be gone for good.
          proposed = null;
        }
      }
      if (!proposed) {
        for (const sn of this.nodes.values()) {
          if (sn.node?.status().role !== "leader") continue;
          const r = sn.node.propose(_enc.encode(marker));
          if (r.ok) proposed = { node: sn.id, index: r.index, term: r.term };
          else if (this.now % 50 === 0) {
            this.trace(`liveness propose at ${sn.id}: ${JSON.stringify(r)}`);
          }
          break;
        }
      }
    }
    for (const sn of this.nodes.values()) {
      if (sn.node) this.trace(`status ${JSON.stringify(sn.node.status())}`);
    }
    this.fail(`liveness: no commit within ${this.o.livenessTicksMax} ticks after healing`);
  }

  /** Members according to the longest applied log (what the cluster committed). */
  #committedMembers(): Set<NodeId> {
    let best: _SimNode | null = null;
    for (const sn of this.nodes.values()) {
      if (!sn.node && sn.restartAt === Infinity) continue;
      const hs = sn.storage.hardState();
      if (!best || hs.commit > best.storage.hardState().commit) best = sn;
    }
    const sn = best!;
    if (!sn.node) this.#start(sn);
    const c = sn.node!.status().conf;
    return new Set([...c.voters, ...c.learners]);
  }

  #tick(): void {
    if (this.faultsOn) this.#faults();
    for (const sn of this.nodes.values()) {
      if (!sn.node && sn.restartAt <= this.now) {
        this.#start(sn);
        this.trace(
          `${sn.id} restarted term=${sn.node!.status().term} commit=${sn.node!.status().commit}`,
        );
      }
    }
    for (const sn of this.nodes.values()) sn.node?.tick();
    this.#deliver();
    if (this.faultsOn) this.#clients();
    for (const sn of this.nodes.values()) this.#drain(sn);
    for (const [id, p] of this.pending) if (this.now >= p.deadline) this.#timeoutOp(id, p);
    this.#checkLeaders();
  }

  #faults(): void {
    const r = this.rng;
    for (const sn of this.nodes.values()) {
      if (sn.node && r() < this.crashRate) this.#crash(sn, "fault");
    }
    if (r() < this.leaderFaultRate) {
      // Targeted: depose the leader mid-replication, where Figure-8-style bugs live.
      const leader = [...this.nodes.values()].find((s) => s.node?.status().role === "leader");
      if (leader && r() < 0.5) this.#crash(leader, "leader fault");
      else if (leader) {
        for (const id of this.ids) this.group.set(id, id === leader.id ? 1 : 0);
        this.trace(`partition: isolated leader ${leader.id}`);
      }
    } else if (r() < this.partitionRate) {
      for (const id of this.ids) this.group.set(id, r() < 0.5 ? 1 : 0);
      this.trace(`partition: ${this.ids.map((id) => `${id}:${this.group.get(id)}`).join(" ")}`);
    } else if (r() < 0.02) {
      if ([...this.group.values()].some((g) => g !== 0)) this.trace("partition healed");
      for (const id of this.ids) this.group.set(id, 0);
    }
    for (const sn of this.nodes.values()) {
      if (sn.node && r() < this.compactRate) {
        const keep = Math.floor(r() * 8);
        const idx = sn.applied - keep;
        if (keep === 0 && idx > sn.storage.firstIndex()) {
          sn.node.compact(idx, this.#encodeSm(sn.kv));
          this.trace(`${sn.id} compacted through ${idx}`);
        }
      }
    }
    if (r() < this.confRate) this.#membershipChange();
    if (r() < this.confRate) this.#transfer();
  }

  #encodeSm(kv: Map<string, string>): Uint8Array {
    return _enc.encode(JSON.stringify({ kv: [...kv.entries()].sort() }));
  }

  #membershipChange(): void {
    const leader = [...this.nodes.values()].find((s) => s.node?.status().role === "leader");
    if (!leader) return;
    const st = leader.node!.status();
    const members = new Set([...st.conf.voters, ...st.conf.learners]);
    const spares = this.ids.filter((id) => !members.has(id));
    const choice = this.rng();
    let cc: ConfChange | null = null;
    if (st.conf.learners.length > 0) cc = { op: "promote", node: st.conf.learners[0]! };
    else if (spares.length > 0 && choice < 0.6) cc = { op: "add_learner", node: spares[0]! };
    else if (st.conf.voters.length > 3) {
      cc = { op: "remove", node: st.conf.voters[Math.floor(this.rng() * st.conf.voters.length)]! };
    }
    if (!cc) return;
    const res = leader.node!.proposeConfChange(cc);
    this.trace(`${leader.id} propose conf ${cc.op} ${cc.node}: ${JSON.stringify(res)}`);
  }

  #transfer(): void {
    const leader = [...this.nodes.values()].find((s) => s.node?.status().role === "leader");
    if (!leader) return;
    const voters = leader.node!.status().conf.voters.filter((v) => v !== leader.id);
    const to = voters[Math.floor(this.rng() * voters.length)];
    if (to === undefined) return;
    // Ask through a random node: followers forward the request to their leader.
    const via =
      [...this.nodes.values()].filter((s) => s.node)[Math.floor(this.rng() * this.nodes.size)];
    (via ?? leader).node!.transferLeadership(to);
    this.transfers++;
    this.trace(`transfer leadership to ${to} via ${(via ?? leader).id}`);
  }

  #send(m: Message): void {
    const r = this.rng;
    if (this.faultsOn && r() < this.dropRate) return;
    const bytes = encodeMessage(m);
    const copies = this.faultsOn && r() < this.dupRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.net.push({ at: this.now + 1 + Math.floor(r() * this.delayMax), bytes, seq: this.seq++ });
    }
  }

  #deliver(): void {
    const due: typeof this.net = [];
    const later: typeof this.net = [];
    for (const m of this.net) (m.at <= this.now ? due : later).push(m);
    this.net = later;
    // Shuffle so messages due on the same tick arrive in any order.
    for (let i = due.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [due[i], due[j]] = [due[j]!, due[i]!];
    }
    for (const d of due) {
      const m = decodeMessage(d.bytes);
      const sn = this.nodes.get(m.to);
      if (!sn?.node) continue;
      if (this.group.get(m.from) !== this.group.get(m.to)) continue;
      if (this.o.traceMessages) this.trace(`deliver ${formatMessage(m)}`);
      if (this.o.bug === "skip_log_matching" && m.type === "app" && m.index > 0) {
        // The injected bug: a follower that trusts any (index, logTerm) it is sent.
        const t = sn.node.termAt(m.index);
        if (t !== undefined && t !== m.logTerm) {
          sn.node.step({ ...m, logTerm: t });
          continue;
        }
      }
      sn.node.step(m);
    }
  }

  #drain(sn: _SimNode): void {
    for (let i = 0; i < READY_ROUNDS_MAX; i++) {
      if (!sn.node || !sn.node.hasReady()) return;
      this.#handleReady(sn, sn.node.ready());
    }
    this.fail(`${sn.id} still has a Ready after ${READY_ROUNDS_MAX} rounds`);
  }

  #handleReady(sn: _SimNode, rd: Ready): void {
    const node = sn.node!;
    if (rd.softState) {
      this.trace(
        `${sn.id} is ${rd.softState.role} (leader ${rd.softState.leader}) term=${node.status().term}`,
      );
      if (rd.softState.role === "leader") this.#checkLeaderCompleteness(sn);
    }
    // Writes reach the disk in this order; a crash before the sync keeps only a prefix.
    const writes: (() => void)[] = [];
    if (rd.snapshot) {
      const s = rd.snapshot;
      writes.push(() => sn.storage.applySnapshot(s));
    }
    for (const e of rd.entries) writes.push(() => this.#persistEntry(sn, e));
    if (rd.hardState) {
      const hs = rd.hardState;
      writes.push(() => sn.storage.setHardState(hs));
    }
    if (this.faultsOn && writes.length > 0 && this.rng() < this.tornRate) {
      const keep = Math.floor(this.rng() * writes.length);
      for (let i = 0; i < keep; i++) writes[i]!();
      this.#crash(sn, `torn write: ${keep}/${writes.length} writes survived`);
      return;
    }
    for (const w of writes) w();
    let voted = false;
    for (const m of rd.messages) {
      if (this.o.traceMessages) this.trace(`send ${formatMessage(m)}`);
      this.#send(m);
      if (m.type === "vote_resp" && !m.reject) voted = true;
    }
    if (voted && this.faultsOn && this.rng() < this.voteCrashRate) {
      // Crash just after granting a vote: the vote must have been durable before sending.
      this.#crash(sn, "after voting", 1);
      return;
    }
    if (rd.snapshot) {
      sn.kv = this.#decodeSm(rd.snapshot.data);
      sn.applied = rd.snapshot.meta.index;
      this.snapshotsInstalled++;
      this.trace(`${sn.id} installed snapshot ${rd.snapshot.meta.term}/${rd.snapshot.meta.index}`);
    }
    for (const e of rd.committedEntries) this.#apply(sn, e);
    if (
      this.faultsOn && rd.committedEntries.length > 0 && sn.applied > sn.storage.firstIndex() &&
      this.rng() < this.compactRate
    ) {
      // Drivers may snapshot mid-Ready, before advance(), at the entry they just applied.
      node.compact(sn.applied, this.#encodeSm(sn.kv));
      this.trace(`${sn.id} compacted through ${sn.applied} before advance`);
    }
    for (const rs of rd.readStates) {
      if ([...this.pending.values()].some((p) => p.ctx === rs.ctx && p.node === sn.id)) {
        sn.reads.set(rs.ctx, rs.index);
      }
    }
    for (const f of rd.readFailures) {
      for (const [id, p] of this.pending) {
        if (p.ctx === f.ctx) {
          this.pending.delete(id);
          this.clientBusy.delete(p.op.client);
        }
      }
    }
    node.advance();
    this.#serveReads(sn);
  }

  #persistEntry(sn: _SimNode, e: Entry): void {
    sn.storage.append([e]);
    // Log matching, checked incrementally: an (index, term) pair names one entry and one
    // predecessor term, cluster-wide.
    const prevTerm = sn.storage.term(e.index - 1);
    const key = `${e.index}:${e.term}`;
    const val = `prev=${prevTerm} ${e.type} ${_dec.decode(e.data)}`;
    const seen = this.entryAt.get(key);
    if (seen === undefined) this.entryAt.set(key, val);
    else if (seen !== val) {
      this.fail(`log matching: ${sn.id} holds ${key} as "${val}", another node as "${seen}"`);
    }
  }

  #apply(sn: _SimNode, e: Entry): void {
    if (e.index !== sn.applied + 1) {
      this.fail(`${sn.id} applied ${e.index} after ${sn.applied}: gap or repeat`);
    }
    sn.applied = e.index;
    const val = `${e.term}|${e.type === "conf" ? formatEntry(e) : _dec.decode(e.data)}`;
    const seen = this.appliedAt.get(e.index);
    if (seen === undefined) {
      this.appliedAt.set(e.index, val);
      this.maxApplied = Math.max(this.maxApplied, e.index);
    } else if (seen !== val) {
      this.fail(
        `state machine safety: ${sn.id} applied ${e.index} as ${val}, another node as ${seen}`,
      );
    }
    if (e.type === "conf") {
      const cc = decodeConfChange(e.data);
      this.confChangesApplied++;
      this.trace(`${sn.id} applied conf ${e.term}/${e.index} ${cc.op} ${cc.node}`);
      return;
    }
    if (e.data.length === 0 || _dec.decode(e.data).startsWith("live-")) return;
    const cmd = JSON.parse(_dec.decode(e.data)) as _Cmd;
    sn.kv.set(cmd.k, cmd.v);
    const p = this.pending.get(cmd.op);
    if (p && p.node === sn.id && p.index === e.index && p.term === e.term) {
      p.op.response = this.now;
      this.history.push(p.op);
      this.pending.delete(cmd.op);
      this.clientBusy.delete(p.op.client);
    }
  }

  #serveReads(sn: _SimNode): void {
    for (const [ctx, index] of sn.reads) {
      if (sn.applied < index) continue;
      sn.reads.delete(ctx);
      for (const [id, p] of this.pending) {
        if (p.ctx !== ctx) continue;
        p.op.value = sn.kv.get(p.op.key) ?? null;
        p.op.response = this.now;
        this.history.push(p.op);
        this.pending.delete(id);
        this.clientBusy.delete(p.op.client);
      }
    }
  }

  #timeoutOp(id: number, p: _Pending): void {
    this.pending.delete(id);
    this.clientBusy.delete(p.op.client);
    // A write that may have been appended could still commit: record it as open-ended.
    if (p.op.kind === "write" && p.index !== undefined) {
      p.op.response = Infinity;
      this.history.push(p.op);
    }
  }

  #clients(): void {
    for (let c = 0; c < CLIENTS; c++) {
      if (this.clientBusy.has(c) || this.rng() > this.opRate) continue;
      const up = [...this.nodes.values()].filter((s) => s.node);
      if (up.length === 0) return;
      // Clients mostly find the leader, sometimes ask whoever they reach.
      const leader = up.find((s) => s.node!.status().role === "leader");
      const sn = leader && this.rng() < 0.8 ? leader : up[Math.floor(this.rng() * up.length)]!;
      const key = KEYS[Math.floor(this.rng() * KEYS.length)]!;
      const id = this.opSeq++;
      const isWrite = this.rng() < 0.5;
      const op: Op = {
        id,
        client: c,
        key,
        kind: isWrite ? "write" : "read",
        value: isWrite ? `c${c}-${id}` : null,
        invoke: this.now,
        response: Infinity,
      };
      if (isWrite) {
        const cmd: _Cmd = { k: key, v: op.value!, op: id };
        const r = sn.node!.propose(_enc.encode(JSON.stringify(cmd)));
        if (!r.ok) continue;
        this.clientBusy.add(c);
        this.pending.set(id, {
          op,
          node: sn.id,
          deadline: this.now + CLIENT_TIMEOUT_TICKS,
          index: r.index,
          term: r.term,
        });
      } else {
        if (this.o.bug === "stale_local_reads") {
          // The injected bug: answer from local state with no ReadIndex round.
          op.value = sn.kv.get(key) ?? null;
          op.response = this.now;
          this.history.push(op);
          continue;
        }
        const ctx = `r${id}`;
        this.clientBusy.add(c);
        this.pending.set(id, { op, node: sn.id, deadline: this.now + CLIENT_TIMEOUT_TICKS, ctx });
        sn.node!.readIndex(ctx);
      }
    }
  }

  #checkLeaders(): void {
    for (const sn of this.nodes.values()) {
      const st = sn.node?.status();
      if (!st || st.role !== "leader") continue;
      const prev = this.leaderOfTerm.get(st.term);
      if (prev === undefined) this.leaderOfTerm.set(st.term, sn.id);
      else if (prev !== sn.id) {
        this.fail(`election safety: ${prev} and ${sn.id} are both leaders of term ${st.term}`);
      }
    }
  }

  #checkLeaderCompleteness(sn: _SimNode): void {
    const node = sn.node!;
    const st = node.status();
    for (const [index, val] of this.appliedAt) {
      if (index < st.firstIndex) continue;
      const term = Number(val.slice(0, val.indexOf("|")));
      if (term >= st.term) continue;
      const t = node.termAt(index);
      if (t !== term) {
        this.fail(
          `leader completeness: new leader ${sn.id} (term ${st.term}) has term ${t} at ${index}, committed ${val}`,
        );
      }
    }
  }
}

/** Formats a failure report: seed, how to reproduce, and the trace tail. */
export function formatFailure(r: SimResult, tailLines = 80): string {
  return [
    `raft sim: seed ${r.seed} FAILED: ${r.error}`,
    `reproduce: SEED=${r.seed} deno test --allow-all tests/raft/sim_test.ts`,
    `(or SEED=${r.seed} deno task test)`,
    `trace tail:`,
    ...r.trace.slice(-tailLines).map((l) => `  ${l}`),
  ].join("\n");
}
