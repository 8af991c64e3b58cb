/**
 * Paired A/B of two builds (or settings) of the mTLS proxy pair, for changes worth a microsecond.
 *
 * Single benchmark runs on this shared machine drift by several microseconds per call within an
 * hour, so a small change is invisible in them. This holds two complete topologies side by side
 * (`bench/mesh_bench.ts --mtls --hold` from each checkout, each with its own environment) and
 * alternates short wrk runs between them (A B, B A, A B, ...). It reports the CPU time per call
 * over both proxies of each side and the mean of the paired differences with its standard error,
 * which cancels the drift the two sides share.
 *
 * `deno run -A bench/ab_pair.ts [--pairs 20] [--duration 4] DIR_A [ENV=V ...] -- DIR_B [ENV=V ...]`
 * (an A/A run, the same checkout twice, shows the noise floor: about ±0.35 µs with 12 pairs, and
 * a bias of up to about 0.4 µs between two held topologies, from how the kernel spreads wrk's
 * connections over each proxy's workers; swap the sides to tell a change from that bias).
 * @module
 */

import { cpuMs, type HeldTarget, type HeldTopology, holdTopology } from "./held_topology.ts";
import { WARMUP_SEC } from "./mesh_bench.ts";

/** One side: a checkout and the environment its topology runs with. */
export interface Side {
  dir: string;
  env: Record<string, string>;
}

/** Removes `--NAME V` from `args` and returns V as a number, or `dflt` when absent. */
export function takeNumberOption(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  if (i === -1) return dflt;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
}

/** Parses `DIR [K=V ...] -- DIR [K=V ...]`. */
export function parseSides(args: string[]): [Side, Side] {
  const cut = args.indexOf("--");
  if (cut < 1 || cut === args.length - 1) {
    throw new Error(
      "usage: ab_pair.ts [--pairs N] [--duration S] DIR_A [K=V ...] -- DIR_B [K=V ...]",
    );
  }
  const side = (xs: string[]): Side => ({
    dir: xs[0]!,
    // Split at the first "=" only: values such as `--v8-flags=...` contain more.
    env: Object.fromEntries(
      xs.slice(1).map((kv) => {
        const i = kv.indexOf("=");
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    ),
  });
  return [side(args.slice(0, cut)), side(args.slice(cut + 1))];
}

/** A held topology and its skein pair. */
interface Held {
  topology: HeldTopology;
  pair: HeldTarget;
}

/** Starts the side's topology and picks out its skein pair. */
async function hold(s: Side): Promise<Held> {
  const topology = await holdTopology(s.dir, s.env);
  const pair = topology.targets.get("skein-mtls");
  if (pair === undefined) throw new Error(`no skein-mtls target in ${s.dir}`);
  return { topology, pair };
}

/** Runs wrk for `dur` s against `h`; returns CPU µs per call over its proxies. */
async function measure(h: Held, dur: number): Promise<number> {
  const before = await Promise.all(h.pair.pids.map(cpuMs));
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c32", `-d${dur}s`, `http://127.0.0.1:${h.pair.port}/`],
    stdout: "piped",
  }).output();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(new TextDecoder().decode(out.stdout))?.[1]);
  const after = await Promise.all(h.pair.pids.map(cpuMs));
  const used = after.reduce((a, x, i) => a + x - before[i]!, 0);
  return (used * 1000) / (rps * dur);
}

/** Mean and standard error of the mean. */
function stats(xs: number[]): { mean: number; se: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1);
  return { mean, se: Math.sqrt(v / xs.length) };
}

if (import.meta.main) {
  const args = [...Deno.args];
  const opt = (name: string, dflt: number) => takeNumberOption(args, name, dflt);
  const pairs = opt("pairs", 20);
  const dur = opt("duration", 4);
  const [a, b] = parseSides(args);
  const held: Held[] = [];
  try {
    held.push(await hold(a), await hold(b));
    const [ha, hb] = held as [Held, Held];
    await measure(ha, WARMUP_SEC); // warm-up: JIT, heap, pools, mux sessions
    await measure(hb, WARMUP_SEC);
    const xa: number[] = [];
    const xb: number[] = [];
    for (let i = 0; i < pairs; i++) {
      // Alternate who goes first, so neither side always runs on a fresher machine.
      if (i % 2 === 0) {
        xa.push(await measure(ha, dur));
        xb.push(await measure(hb, dur));
      } else {
        xb.push(await measure(hb, dur));
        xa.push(await measure(ha, dur));
      }
      console.log(`pair ${i + 1}: A ${xa[i]!.toFixed(2)} µs, B ${xb[i]!.toFixed(2)} µs`);
    }
    const d = stats(xa.map((x, i) => x - xb[i]!));
    console.log(
      `A ${stats(xa).mean.toFixed(2)} µs, B ${stats(xb).mean.toFixed(2)} µs per call; ` +
        `A - B = ${d.mean.toFixed(2)} ± ${d.se.toFixed(2)} µs (standard error, ${pairs} pairs)`,
    );
  } finally {
    for (const h of held) {
      try {
        h.topology.child.kill("SIGINT");
      } catch {
        // already gone
      }
    }
  }
}
