/**
 * The control-node simulation over many seeds. `SEEDS=n` changes how many (default 100);
 * `SEED=n` replays one seed and prints its trace.
 * @module
 */
import {
  type ClusterSimStats,
  emptyClusterSimStats,
  formatClusterFailure,
  runClusterSim,
} from "./cluster_sim.ts";

const SEED = Deno.env.get("SEED");
const SEEDS = Number(Deno.env.get("SEEDS") ?? "100");
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
    const total = emptyClusterSimStats();
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
    if (SEED !== undefined) return;
    // A run that never reaches the interesting paths proves nothing about them.
    const n = seeds.length;
    const need: [keyof ClusterSimStats, number][] = [
      ["acked", n * 20],
      ["crashes", n],
      ["crashesAtDiskOp", n / 2],
      ["tornBytes", 1],
      ["snapshots", n],
      ["partitions", n / 2],
      ["dropped", n],
      ["duplicated", n],
    ];
    for (const [k, min] of need) {
      if (total[k] < min) throw new Error(`only ${total[k]} ${k} over ${n} seeds (want ${min})`);
    }
  },
);

Deno.test("the checker catches acknowledged writes lost to a WAL whose fsync keeps nothing", async () => {
  // Seeds are tried until one loses a write: with no WAL fsync kept, a write is acknowledged
  // before it is durable anywhere, and crashes drop it. Bounded: a working checker fails soon.
  const caught: string[] = [];
  for (let seed = 1; seed <= 20 && caught.length === 0; seed++) {
    const r = await runClusterSim({ seed, walIgnoresFsync: true, livenessMsMax: 2000 });
    if (!r.ok && r.failure?.includes("acknowledged write")) caught.push(`${seed}: ${r.failure}`);
  }
  if (caught.length === 0) {
    throw new Error("20 seeds whose WAL ignores fsync lost no acknowledged write");
  }
});
