/**
 * Paired A/B of two builds (or settings) of the ingress pair (HTTPS into a gateway plus one mTLS
 * hop), by requests per second, for changes to how the pipeline overlaps.
 *
 * Such a change shows only while the machine has idle time, and on a shared machine single runs
 * drift by 2x within minutes. This holds two complete topologies side by side
 * (`bench/ingress_bench.ts --hold` from each checkout, each with its own environment, app and
 * HAProxy pair) and alternates short wrk runs between them (A B, B A, ...), each followed by a
 * run against side A's HAProxy pair. It reports each side's median req/s, CPU per request over
 * its two proxies and machine idle share, and the geometric mean of the paired B/A req/s ratios
 * with its standard error (on the log scale), which cancels the drift the two sides share.
 *
 * `deno run -A bench/ingress_ab.ts [--pairs 12] [--duration 4] DIR_A [ENV=V ...] -- DIR_B [ENV=V ...]`
 * (an A/A run, the same checkout twice, shows the noise floor).
 * @module
 */

import { parseSides, type Side, takeNumberOption } from "./ab_pair.ts";
import { cpuMs, type HeldTarget, type HeldTopology, holdTopology } from "./held_topology.ts";

/** Seconds of the warm-up run against each target before the pairs. */
const WARMUP_SEC = 3;

/** One wrk run's figures. */
interface Round {
  rps: number;
  /** CPU µs per request over the target's processes. */
  cpuUs: number;
  /** Share of the machine's CPU time that was idle, percent. */
  idle: number;
}

/** Idle and total jiffies of the machine so far, from `/proc/stat`. */
async function _machineJiffies(): Promise<{ idle: number; total: number }> {
  const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  return { idle: v[3]! + v[4]!, total: v.reduce((a, b) => a + b, 0) };
}

/** Runs `wrk -t1 -c32` over HTTPS for `dur` s against `t`. */
async function _measure(t: HeldTarget, dur: number): Promise<Round> {
  const before = await Promise.all(t.pids.map(cpuMs));
  const j0 = await _machineJiffies();
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c32", `-d${dur}s`, `https://127.0.0.1:${t.port}/`],
    stdout: "piped",
  }).output();
  const j1 = await _machineJiffies();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(new TextDecoder().decode(out.stdout))?.[1]);
  if (!(rps > 0)) throw new Error(`wrk measured nothing against port ${t.port}`);
  const after = await Promise.all(t.pids.map(cpuMs));
  const used = after.reduce((a, x, i) => a + x - before[i]!, 0);
  return {
    rps,
    cpuUs: (used * 1000) / (rps * dur),
    idle: (100 * (j1.idle - j0.idle)) / Math.max(1, j1.total - j0.total),
  };
}

/** Median of `xs`. */
function _median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Starts the side's ingress topology and picks out its skein and HAProxy targets. */
async function _hold(s: Side): Promise<{ topology: HeldTopology; skein: HeldTarget }> {
  const topology = await holdTopology(s.dir, s.env, [], {
    args: ["bench/ingress_bench.ts"],
    last: "skein-ingress",
  });
  const skein = topology.targets.get("skein-ingress");
  if (skein === undefined) throw new Error(`no skein-ingress target in ${s.dir}`);
  return { topology, skein };
}

/** One side's summary line. */
function _summary(name: string, rs: Round[]): string {
  return `${name}: median ${_median(rs.map((r) => r.rps)).toFixed(0)} req/s, ` +
    `${_median(rs.map((r) => r.cpuUs)).toFixed(1)} µs CPU per request, ` +
    `${_median(rs.map((r) => r.idle)).toFixed(0)}% machine idle`;
}

if (import.meta.main) {
  const args = [...Deno.args];
  const opt = (name: string, dflt: number) => takeNumberOption(args, name, dflt);
  const pairs = opt("pairs", 12);
  const dur = opt("duration", 4);
  const [a, b] = parseSides(args);
  const held: HeldTopology[] = [];
  try {
    const ha = await _hold(a);
    held.push(ha.topology);
    const hb = await _hold(b);
    held.push(hb.topology);
    const haproxy = ha.topology.targets.get("haproxy-ingress") ?? null;
    for (const t of [ha.skein, hb.skein, ...(haproxy ? [haproxy] : [])]) {
      await _measure(t, WARMUP_SEC); // JIT, heap, pools, mux sessions
    }
    const xa: Round[] = [];
    const xb: Round[] = [];
    const xh: Round[] = [];
    const logRatios: number[] = [];
    for (let i = 0; i < pairs; i++) {
      // Alternate who goes first, so neither side always runs on a fresher machine.
      if (i % 2 === 0) {
        xa.push(await _measure(ha.skein, dur));
        xb.push(await _measure(hb.skein, dur));
      } else {
        xb.push(await _measure(hb.skein, dur));
        xa.push(await _measure(ha.skein, dur));
      }
      if (haproxy !== null) xh.push(await _measure(haproxy, dur));
      logRatios.push(Math.log(xb[i]!.rps / xa[i]!.rps));
      const f = (r: Round) => `${r.rps.toFixed(0)} req/s (${r.idle.toFixed(0)}% idle)`;
      console.log(
        `pair ${i + 1}: A ${f(xa[i]!)}, B ${f(xb[i]!)}` +
          (haproxy !== null ? `, HAProxy ${f(xh[i]!)}` : "") +
          `; load ${(await Deno.readTextFile("/proc/loadavg")).split(" ")[0]}`,
      );
    }
    console.log(_summary("A", xa));
    console.log(_summary("B", xb));
    if (xh.length > 0) {
      console.log(`HAProxy: median ${_median(xh.map((r) => r.rps)).toFixed(0)} req/s`);
    }
    const mean = logRatios.reduce((s, x) => s + x, 0) / pairs;
    const v = logRatios.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, pairs - 1);
    const se = Math.sqrt(v / pairs);
    console.log(
      `B / A req/s: ${Math.exp(mean).toFixed(3)} (geometric mean of ${pairs} pairs; ` +
        `one standard error spans ${Math.exp(mean - se).toFixed(3)}–${
          Math.exp(mean + se).toFixed(3)
        })`,
    );
  } finally {
    for (const t of held) {
      try {
        t.child.kill("SIGINT");
      } catch {
        // already gone
      }
    }
  }
}
