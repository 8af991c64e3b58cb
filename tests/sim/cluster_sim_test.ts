/**
 * The control-node simulation over many seeds. `SEEDS=n` changes how many (default 40);
 * `SEED=n` replays one seed and prints its trace.
 * @module
 */
import { type ClusterSimStats, formatClusterFailure, runClusterSim } from "./cluster_sim.ts";

const SEED = Deno.env.get("SEED");
const SEEDS = Number(Deno.env.get("SEEDS") ?? "40");
/** Failures printed in full; the rest are listed by seed. */
const FAILURES_PRINTED_MAX = 3;

Deno.test(
  `control nodes lose no acknowledged write and converge over ${
    SEED ? `seed ${SEED}` : `${SEEDS} seeds`
  } of crashes, torn writes, EIO, partitions and a lossy network`,
  async () => {
    const seeds = SEED !== undefined
      ? [Number(SEED)]
      : Array.from({ length: SEEDS }, (_, i) => i + 1);
    const failed: number[] = [];
    const reports: string[] = [];
    const total: Record<keyof ClusterSimStats, number> = {
      writes: 0,
      acked: 0,
      crashes: 0,
      crashesAtDiskOp: 0,
      eio: 0,
      tornBytes: 0,
      partitions: 0,
      dropped: 0,
      duplicated: 0,
      events: 0,
    };
    for (const seed of seeds) {
      const r = await runClusterSim({ seed });
      for (const k of Object.keys(total) as (keyof ClusterSimStats)[]) total[k] += r.stats[k];
      if (SEED !== undefined) {
        console.log(formatClusterFailure(r).replace(" FAILED: undefined", " passed"));
      }
      if (r.ok) continue;
      failed.push(seed);
      if (reports.length < FAILURES_PRINTED_MAX) reports.push(formatClusterFailure(r));
    }
    if (failed.length > 0) {
      throw new Error(
        `${failed.length}/${seeds.length} seeds failed: ${failed.join(",")}\n\n${
          reports.join("\n\n")
        }`,
      );
    }
    console.log(`cluster sim totals over ${seeds.length} seeds: ${JSON.stringify(total)}`);
  },
);
