/**
 * A control cluster whose nodes each run on their own host of a {@linkcode Fleet}, and the
 * leader-isolation round the fleet test and `deno task bench fleet` run: writes through every
 * node while the leader is cut off from its peers, then checks of what was acknowledged.
 * @module
 */
import { ProcessCluster, request, sleep, waitFor } from "../control_process/cluster.ts";
import { Fleet } from "./netns.ts";

/** A cluster of `size` control nodes, one per fleet host (named like the nodes). */
export interface ControlFleet {
  fleet: Fleet;
  cluster: ProcessCluster;
  destroy(): Promise<void>;
}

/**
 * Builds the hosts (one per node, plus `extraHosts` for proxies) and starts the nodes on them
 * (default tuning, as an operator runs it).
 */
export async function startControlFleet(
  size = 3,
  extraHosts: readonly string[] = [],
): Promise<ControlFleet> {
  const ids = Array.from({ length: size }, (_, i) => `cp-${i + 1}`);
  const fleet = await Fleet.create([...ids, ...extraHosts]);
  let cluster: ProcessCluster | null = null;
  try {
    cluster = await ProcessCluster.create({
      size,
      hostOf: (id) => fleet.addr(id),
      launcher: (id) => fleet.exec(id),
    });
    await cluster.startAll();
    await cluster.waitLeader(30_000);
    await cluster.waitAdminToken();
  } catch (e) {
    await cluster?.destroy();
    await fleet.destroy();
    throw e;
  }
  const c = cluster;
  return {
    fleet,
    cluster: c,
    async destroy() {
      await c.destroy();
      await fleet.destroy();
    },
  };
}

/** One write of a round and how it ended. */
interface _Write {
  id: string;
  via: string;
  startedAt: number;
  ackedAt: number | null;
}

/** What one leader-isolation round found. */
export interface IsolationRound {
  /** The node that was isolated. */
  isolated: string;
  /** From the isolation to the first acknowledgement of a write sent to a survivor after it. */
  failoverMs: number | null;
  /** Wall-clock time of the cut (ISO), to find the round in the nodes' logs. */
  cutAt: string;
  /** The survivor that acknowledged that first write. */
  firstVia: string | null;
  /** Writes sent to the isolated node after the cut that it acknowledged (split brain). */
  isolatedAcks: number;
  /** Writes acknowledged in the round. */
  acked: number;
  /** Acknowledged writes missing from some node after the heal. */
  lost: string[];
}

/** Writer loops per node. */
const _WRITERS_PER_NODE = 2;
/** Bound on one write: short, so a writer stuck on the cut leader tries again soon. */
const _WRITE_TIMEOUT_MS = 2_000;

/**
 * Isolates the current leader from the other control hosts while every node takes writes, waits
 * for a survivor to acknowledge one, heals, and checks the cluster kept every acknowledged write
 * and the isolated side acknowledged none sent after the cut.
 */
export async function leaderIsolationRound(
  cf: ControlFleet,
  round: number,
): Promise<IsolationRound> {
  const { cluster: c, fleet } = cf;
  const leader = await c.waitLeader(30_000);
  const others = c.ids().filter((id) => id !== leader);
  // One service per round: rounds never approach a service's instance cap.
  const service = `fleet-r${round}`;
  const writes: _Write[] = [];
  let stop = false;
  let cutAt = Infinity;
  let firstFailover: number | null = null;
  let firstVia: string | null = null;
  let cutWall = "";
  const loop = async (via: string, w: number) => {
    for (let k = 0; !stop; k++) {
      const rec: _Write = {
        id: `${via}-${w}-${k}`,
        via,
        startedAt: performance.now(),
        ackedAt: null,
      };
      writes.push(rec);
      const r = await request(
        `${c.api(via)}/v1/services/${service}/instances/${rec.id}`,
        "PUT",
        { address: "10.1.0.1", port: 8080 },
        _WRITE_TIMEOUT_MS,
      );
      if (r.status === 200 || r.status === 201) {
        rec.ackedAt = performance.now();
        if (via !== leader && rec.startedAt >= cutAt && firstFailover === null) {
          firstFailover = rec.ackedAt - cutAt;
          firstVia = via;
        }
      } else {
        await sleep(20);
      }
    }
  };
  const loops = c.ids().flatMap((id) =>
    Array.from({ length: _WRITERS_PER_NODE }, (_, w) => loop(id, w))
  );
  try {
    await waitFor(
      "writes acknowledged before the cut",
      20_000,
      () => writes.filter((x) => x.ackedAt !== null).length >= 20 ? true : undefined,
    );
    await fleet.isolate(leader, others);
    cutAt = performance.now();
    cutWall = new Date().toISOString();
    await waitFor(
      "a survivor to acknowledge a write after the leader's isolation",
      30_000,
      () => firstFailover !== null ? true : undefined,
    );
    // Keep writing a little longer, so the isolated side has time to acknowledge wrongly.
    const until = performance.now() + 2_000;
    await waitFor(
      "two more seconds of writes",
      10_000,
      () => performance.now() >= until ? true : undefined,
    );
  } finally {
    stop = true;
    await Promise.all(loops);
    await fleet.heal(leader);
  }
  await c.waitLeader(30_000);
  await c.waitConverged(30_000);
  const acked = writes.filter((x) => x.ackedAt !== null);
  const lost = new Set<string>();
  for (const id of c.ids()) {
    const have = await c.staleInstances(id, service);
    for (const x of acked) if (!have?.has(x.id)) lost.add(x.id);
  }
  return {
    isolated: leader,
    failoverMs: firstFailover === null ? null : Math.round(firstFailover),
    cutAt: cutWall,
    firstVia,
    isolatedAcks: acked.filter((x) => x.via === leader && x.startedAt >= cutAt).length,
    acked: acked.length,
    lost: [...lost],
  };
}
