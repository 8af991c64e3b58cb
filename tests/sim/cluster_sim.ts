/**
 * A seeded, deterministic simulation of whole control nodes (TigerBeetle VOPR style): several
 * real {@linkcode ControlNode}s (Ready-loop driver, write relay, registry state machine, WAL and
 * snapshot store) run on a {@linkcode MemFs} each and one {@linkcode SimNet}, in virtual time.
 *
 * One seed drives everything: the cluster size, snapshot interval, fault rates, which disk
 * operation crashes a node (and how much of an unsynced write survives), EIO failures, random
 * kills, partitions, dropped, duplicated and reordered frames, and the client's writes to random
 * nodes. A safety phase runs with faults; a liveness phase heals everything, restarts every node
 * and requires the cluster to converge within a cap. The checker then requires that every
 * acknowledged write is in every node's registry, that every node's registry is byte-identical,
 * and that one more write commits.
 * @module
 */
import type { ControlNode } from "../../control/node/mod.ts";
import { validateCommand } from "../../control/registry/mod.ts";
import { FsFaultError, type FsOp } from "../../control/storage/fs.ts";
import { seededRandom } from "../seeded_random.ts";
import { type FsFault, MemFs, type MemFsOptions } from "./mem_fs.ts";
import { SimNet } from "./sim_net.ts";
import { FOREVER, Incarnation, World } from "./world.ts";
import { simNodeOptions, startSimNode } from "./sim_node.ts";

/** Options of one run. */
export interface ClusterSimOptions {
  /** The seed everything derives from. */
  seed: number;
  /** Virtual milliseconds of the fault-injecting phase. @default 2500 */
  safetyMs?: number;
  /** Cap in virtual milliseconds of the healed phase. @default 5000 */
  livenessMsMax?: number;
  /** Trace lines kept for a failure report. @default 120 */
  traceLinesMax?: number;
  /** Gives every node a WAL whose fsync keeps nothing (to prove the checker can fail). */
  walIgnoresFsync?: boolean;
}

/** Counters proving a run exercised what it claims to. */
export interface ClusterSimStats {
  /** Client writes sent. */
  writes: number;
  /** Client writes acknowledged. */
  acked: number;
  /** Nodes crashed (at a disk operation or killed between operations). */
  crashes: number;
  /** Crashes that happened inside a disk operation. */
  crashesAtDiskOp: number;
  /** Disk operations failed with EIO (the node stops itself). */
  eio: number;
  /** Unsynced bytes a crash threw away (torn writes). */
  tornBytes: number;
  /** Snapshots written to disk (and the log compacted behind them). */
  snapshots: number;
  /** Partitions made. */
  partitions: number;
  /** Frames dropped and duplicated by the network. */
  dropped: number;
  /** Frames delivered twice. */
  duplicated: number;
  /** Simulation events run. */
  events: number;
}

/** Counters all at zero, to add runs into. */
export function emptyClusterSimStats(): ClusterSimStats {
  return {
    writes: 0,
    acked: 0,
    crashes: 0,
    crashesAtDiskOp: 0,
    eio: 0,
    tornBytes: 0,
    snapshots: 0,
    partitions: 0,
    dropped: 0,
    duplicated: 0,
    events: 0,
  };
}

/** Outcome of one run. */
export interface ClusterSimResult {
  /** The seed. */
  seed: number;
  /** Whether every check held. */
  ok: boolean;
  /** The broken check, when one broke. */
  failure?: string;
  /** What the run did. */
  stats: ClusterSimStats;
  /** The last events, for a failure report. */
  trace: string[];
}

/** Disk operations a crash or an EIO may hit. */
const _FAULTY_OPS: ReadonlySet<FsOp> = new Set([
  "write",
  "sync",
  "rename",
  "syncDir",
  "remove",
  "truncate",
]);
/** Client writes in flight at once. */
const _CLIENT_IN_FLIGHT_MAX = 32;
/** How long a client waits for a write before giving up on it. */
const _CLIENT_TIMEOUT_MS = 1500;

interface _Slot {
  id: string;
  fs: MemFs;
  life: Incarnation;
  node: ControlNode | null;
}

/** Runs one seed and checks it. */
export async function runClusterSim(o: ClusterSimOptions): Promise<ClusterSimResult> {
  const rnd = seededRandom(o.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const world = new World();
  const t0 = world.now;
  const traceMax = o.traceLinesMax ?? 120;
  const trace: string[] = [];
  const log = (line: string) => {
    trace.push(`+${world.now - t0}ms ${line}`);
    if (trace.length > traceMax) trace.shift();
  };
  const stats = emptyClusterSimStats();
  const size = rnd() < 0.7 ? 3 : 5;
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const snapshotEvery = int(8, 60);
  const crashChance = 0.001 + rnd() * 0.005;
  const eioChance = rnd() < 0.3 ? 0.0005 : 0;
  const net = new SimNet(world, {
    random: rnd,
    dropChance: rnd() * 0.1,
    dupChance: rnd() * 0.05,
    delayMinMs: 1,
    delayMaxMs: int(2, 25),
  });
  log(`seed ${o.seed}: ${size} nodes, snapshot every ${snapshotEvery}, crash/op ${crashChance}`);
  let phase: "safety" | "liveness" = "safety";

  const slots: _Slot[] = [];
  const fsOptions = (slot: () => _Slot): MemFsOptions => ({
    random: rnd,
    shortWriteChance: 0.05,
    ignoreSyncUnder: o.walIgnoresFsync ? "/wal/" : undefined,
    plan: (op: FsOp, path: string): FsFault => {
      if (phase !== "safety" || !_FAULTY_OPS.has(op)) return "ok";
      const r = rnd();
      if (r < crashChance) {
        log(`${slot().id} crashes at ${op} ${path}`);
        stats.crashesAtDiskOp++;
        return "crash";
      }
      if (r < crashChance + eioChance) {
        log(`${slot().id} gets EIO at ${op} ${path}`);
        stats.eio++;
        return "eio";
      }
      return "ok";
    },
    onCrash: () => die(slot(), "crashed"),
  });

  const die = (slot: _Slot, why: string) => {
    if (!slot.life.alive) return;
    slot.life.alive = false;
    slot.fs.kill();
    slot.node = null;
    stats.crashes++;
    log(`${slot.id} down (${why})`);
    const life = slot.life;
    world.after(phase === "safety" ? int(20, 400) : 1, () => {
      if (slot.life !== life) return;
      const image = slot.fs.crashImage(fsOptions(() => slot));
      stats.tornBytes += slot.fs.faults.tornBytes;
      stats.snapshots += slot.fs.faults.snapshots;
      slot.fs = image;
      start(slot);
    });
  };

  const start = (slot: _Slot) => {
    const life = new Incarnation(slot.life.life + 1);
    slot.life = life;
    const opts = simNodeOptions(slot.id, ids, {
      snapshotEvery,
      random: seededRandom(int(1, 2 ** 31)),
    });
    startSimNode(world, net, slot.fs, life, opts).then((node) => {
      if (!life.alive) return;
      slot.node = node;
      log(`${slot.id} up (life ${life.life}, applied ${node.health().applied_index})`);
      node.failed.then((e) => {
        if (slot.life === life) die(slot, `stopped: ${e.message}`);
      });
    }, (e) => {
      if (!life.alive) return;
      if (e instanceof FsFaultError) {
        // The injected disk error stopped the start, as it would stop the process: restart.
        die(slot, `start failed: ${e.message}`);
        return;
      }
      // A node that cannot restart from what its disk kept has lost data: a failure.
      startFailures.push(`${slot.id} could not start: ${(e as Error).message}`);
      log(`${slot.id} could not start: ${(e as Error).message}`);
    });
  };
  const startFailures: string[] = [];

  for (const id of ids) {
    const slot: _Slot = {
      id,
      fs: null as unknown as MemFs,
      life: new Incarnation(0),
      node: null,
    };
    slot.fs = new MemFs(fsOptions(() => slot));
    slots.push(slot);
    start(slot);
  }

  // ---- the client: unique writes to random nodes; an acknowledgement is a promise kept
  const acked = new Map<string, number>();
  let inFlight = 0;
  let seq = 0;
  const clientClock = world.clock(FOREVER);
  const write = (via: ControlNode, id: string): Promise<boolean> => {
    seq++;
    stats.writes++;
    inFlight++;
    const cmd = validateCommand({
      type: "put_operator_token",
      record: {
        id,
        name: id,
        role: "read",
        hash: seq.toString(16).padStart(64, "0"),
        createdAt: world.now,
        expiresAt: null,
      },
    });
    return via.propose(cmd, clientClock.timeout(_CLIENT_TIMEOUT_MS)).then((r) => {
      if (!r.ok) {
        log(`write ${id} refused: ${r.error.code}`);
        return false;
      }
      acked.set(id, r.index);
      stats.acked++;
      log(`write ${id} acknowledged at ${r.index}`);
      return true;
    }, () => false).finally(() => {
      inFlight--;
    });
  };
  const clientStep = () => {
    if (phase !== "safety") return;
    world.after(int(1, 12), clientStep);
    const up = slots.filter((s) => s.node !== null);
    if (up.length === 0 || inFlight >= _CLIENT_IN_FLIGHT_MAX) return;
    const via = up[int(0, up.length - 1)]!.node!;
    void write(via, `w${seq + 1}`);
  };
  world.after(int(50, 200), clientStep);

  // ---- faults that are not disk operations: kills between operations and partitions
  const chaos = () => {
    if (phase !== "safety") return;
    world.after(int(50, 300), chaos);
    const r = rnd();
    if (r < 0.15) {
      const s = slots[int(0, size - 1)]!;
      if (s.life.alive) die(s, "killed");
    } else if (r < 0.35) {
      const side = ids.filter(() => rnd() < 0.4);
      net.partition(side, ids);
      stats.partitions++;
      log(`partition [${side.join(",")}] | rest`);
    } else if (r < 0.55) {
      net.heal();
      log("partition healed");
    }
  };
  world.after(int(100, 400), chaos);

  const safetyEnd = world.now + (o.safetyMs ?? 2500);
  await world.run(safetyEnd);

  // ---- liveness: no faults, every node up, then convergence within the cap
  phase = "liveness";
  net.heal();
  net.faulty = false;
  log("faults off; nodes that are down restart as scheduled");
  let converged = false;
  const check = () => {
    if (converged) return;
    converged = _converged(slots) && inFlight === 0;
    if (!converged) world.after(50, check);
  };
  world.after(50, check);
  const cap = world.now + (o.livenessMsMax ?? 5_000);
  await world.run(cap, () => converged || startFailures.length > 0);

  let failure: string | undefined = startFailures[0];
  if (!failure && !converged) {
    // A leader that lacks an acknowledged write names the loss better than "stuck" does.
    const leaders = slots.filter((s) => s.node?.isLeader());
    const lost = _lostWrite(leaders, acked);
    failure = `${lost ? `${lost}; ` : ""}no convergence within the cap: ${_describe(slots)}`;
  }
  if (!failure) failure = _lostWrite(slots, acked);
  if (!failure) {
    // The cluster must still take writes after all that.
    const leader = slots.find((s) => s.node?.isLeader())!.node!;
    let done: boolean | null = null;
    void write(leader, "final").then((ok) => done = ok);
    await world.run(world.now + 5_000, () => done !== null);
    if (done !== true) failure = "a write after the faults healed did not commit";
  }
  for (const s of slots) {
    s.life.alive = false;
    stats.snapshots += s.fs.faults.snapshots;
  }
  world.close();
  stats.events = world.events;
  stats.dropped = net.stats.dropped;
  stats.duplicated = net.stats.duplicated;
  if (failure) log(`FAILED: ${failure}`);
  return { seed: o.seed, ok: failure === undefined, failure, stats, trace };
}

/** Whether every node runs, one leads, and all applied the same log to identical states. */
function _converged(slots: readonly _Slot[]): boolean {
  if (slots.some((s) => s.node === null)) return false;
  const nodes = slots.map((s) => s.node!);
  if (!nodes.some((n) => n.isLeader())) return false;
  const h = nodes.map((n) => n.health());
  const commit = h[0]!.commit_index;
  if (h.some((x) => x.commit_index !== commit || x.applied_index !== commit)) return false;
  const first = nodes[0]!.state().snapshot();
  return nodes.every((n) => _equal(n.state().snapshot(), first));
}

/** Names the first acknowledged write some node's registry lacks. */
function _lostWrite(slots: readonly _Slot[], acked: Map<string, number>): string | undefined {
  for (const s of slots) {
    const have = new Set(s.node!.state().operatorTokens().map((t) => t.id));
    for (const [id, index] of acked) {
      if (!have.has(id)) return `acknowledged write ${id} (index ${index}) is missing on ${s.id}`;
    }
  }
  return undefined;
}

function _describe(slots: readonly _Slot[]): string {
  return slots.map((s) => {
    if (!s.node) return `${s.id}: down`;
    const h = s.node.health();
    return `${s.id}: ${h.role} term ${h.term} commit ${h.commit_index} applied ${h.applied_index}`;
  }).join("; ");
}

function _equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A failure as a story: the seed, how to replay it, the broken check and the last events. */
export function formatClusterFailure(r: ClusterSimResult): string {
  return [
    `seed ${r.seed} FAILED: ${r.failure}`,
    `replay: SEED=${r.seed} deno test --allow-all tests/sim/cluster_sim_test.ts`,
    `stats: ${JSON.stringify(r.stats)}`,
    "last events:",
    ...r.trace.map((l) => `  ${l}`),
  ].join("\n");
}
