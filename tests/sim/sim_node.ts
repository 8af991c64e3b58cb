/**
 * Starting a real control node inside the simulated world: the options every simulated node
 * shares (no TLS, no CA bootstrap, 10 ms ticks) and the ports that bind it to a
 * {@linkcode MemFs}, the {@linkcode SimNet} and the world's clock for one life.
 * @module
 */
import { nodeId, nullLogger } from "../../common/mod.ts";
import { ControlNode, type ControlNodeOptions } from "../../control/node/mod.ts";
import type { MemFs } from "./mem_fs.ts";
import type { SimNet } from "./sim_net.ts";
import type { Incarnation, World } from "./world.ts";

/** Milliseconds per Raft tick of a simulated node. */
export const SIM_TICK_MS = 10;

/** Options of simulated node `id` in a cluster of `ids`. */
export function simNodeOptions(
  id: string,
  ids: readonly string[],
  overrides: Partial<ControlNodeOptions> = {},
): ControlNodeOptions {
  return {
    node: id,
    dataDir: "/data",
    raftListen: { hostname: id, port: 1 },
    raftAdvertise: `${id}:1`,
    apiUrl: `http://${id}.sim`,
    peers: ids.map((p) => ({ id: p, hostname: p, port: 1 })),
    join: false,
    clusterId: "sim.test",
    tickMs: SIM_TICK_MS,
    electionTicks: 10,
    snapshotEvery: 1000,
    trustDomain: null,
    log: nullLogger,
    ...overrides,
  };
}

/** Starts one life of a node on its disk, the network and the world's clock. */
export function startSimNode(
  world: World,
  net: SimNet,
  fs: MemFs,
  life: Incarnation,
  opts: ControlNodeOptions,
): Promise<ControlNode> {
  return ControlNode.startWith(opts, {
    fs,
    net: net.endpoint(nodeId(opts.node), life),
    clock: world.clock(life),
  });
}
