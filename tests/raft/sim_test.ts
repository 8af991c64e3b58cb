/**
 * The seeded simulator over many seeds, plus self-checks proving its checkers can fail.
 * `SEEDS=n` changes the number of seeds (default 500); `SEED=n` runs one seed with a full
 * message trace.
 * @module
 */
import { formatFailure, runSim, type SimBug, type SimStats } from "./sim.ts";

const SEED = Deno.env.get("SEED");
const SEEDS = Number(Deno.env.get("SEEDS") ?? "500");
/** Failures printed in full; the rest are listed by seed. */
const FAILURES_PRINTED_MAX = 3;

Deno.test(
  `raft sim keeps every safety and liveness property over ${
    SEED ? `seed ${SEED}` : `${SEEDS} seeds`
  }`,
  () => {
    const seeds = SEED !== undefined
      ? [Number(SEED)]
      : Array.from({ length: SEEDS }, (_, i) => i + 1);
    const failed: number[] = [];
    const reports: string[] = [];
    const total: SimStats = {
      ticks: 0,
      committed: 0,
      ops: 0,
      reads: 0,
      leaders: 0,
      crashes: 0,
      snapshotsInstalled: 0,
      confChangesApplied: 0,
      transfers: 0,
    };
    for (const seed of seeds) {
      const r = runSim({ seed, traceMessages: SEED !== undefined });
      for (const k of Object.keys(total) as (keyof SimStats)[]) total[k] += r.stats[k];
      if (r.ok) continue;
      failed.push(seed);
      if (reports.length < FAILURES_PRINTED_MAX) {
        // Re-run deterministically with messages in the trace for a readable story.
        reports.push(formatFailure(runSim({ seed, traceMessages: true })));
      }
    }
    if (failed.length > 0) {
      throw new Error(
        `${failed.length}/${seeds.length} seeds failed: ${failed.join(",")}\n\n${
          reports.join("\n\n")
        }`,
      );
    }
    if (SEED !== undefined) return;
    // A run that never reaches the interesting paths proves nothing about them.
    const n = seeds.length;
    const need: [keyof SimStats, number][] = [
      ["committed", n * 5],
      ["ops", n],
      ["reads", n / 4],
      ["crashes", n / 10],
      ["snapshotsInstalled", n / 50],
      ["confChangesApplied", n / 20],
      ["transfers", n / 20],
    ];
    for (const [k, min] of need) {
      if (total[k] < min) {
        throw new Error(
          `sim coverage too low: ${k}=${total[k]} < ${min} (${JSON.stringify(total)})`,
        );
      }
    }
  },
);

function _expectCaught(bug: SimBug, seeds: number, faultScale: number, pattern: RegExp): void {
  const errors: string[] = [];
  // Stops at the first catch, so the bound only matters when the checker is blind.
  for (let seed = 1; seed <= seeds; seed++) {
    const r = runSim({ seed, bug, faultScale, livenessTicksMax: 200 });
    if (r.ok) continue;
    errors.push(`seed ${seed}: ${r.error}`);
    if (pattern.test(r.error ?? "")) return;
  }
  {
    throw new Error(
      `bug ${bug} went unnoticed over ${seeds} seeds; failures seen: ${
        errors.join("; ") || "none"
      }`,
    );
  }
}

Deno.test("raft sim catches a node that forgets its vote on restart (election safety)", () => {
  _expectCaught("forget_vote_on_restart", 400, 3, /election safety|log matching|state machine/);
});

Deno.test("raft sim catches followers that skip the log-matching check", () => {
  _expectCaught("skip_log_matching", 400, 1, /log matching|state machine|leader completeness/);
});

Deno.test("raft sim catches reads served from local state without ReadIndex (linearizability)", () => {
  _expectCaught("stale_local_reads", 400, 2, /not linearizable/);
});

Deno.test("raft sim is deterministic: one seed gives one trace", () => {
  const a = runSim({ seed: 4242, traceMessages: true, traceLinesMax: 5000 });
  const b = runSim({ seed: 4242, traceMessages: true, traceLinesMax: 5000 });
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    const i = a.trace.findIndex((l, k) => l !== b.trace[k]);
    throw new Error(`runs of seed 4242 diverge at trace line ${i}: ${a.trace[i]} vs ${b.trace[i]}`);
  }
  if (a.trace.length < 100) throw new Error(`trace suspiciously short: ${a.trace.length} lines`);
});
