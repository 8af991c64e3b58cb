/**
 * Where the whole machine's CPU goes per call, HAProxy pair against skein pair, for questions a
 * proxies-only figure cannot answer: is the machine saturated, or are the processes waiting on
 * each other (idle time while wrk has calls in flight)?
 *
 * Holds one mTLS topology (`bench/mesh_bench.ts --mtls --hold`, optionally `--workers N`),
 * then alternates wrk runs between its HAProxy and skein targets and prints per run: req/s, CPU
 * µs per call of the inbound proxy, the outbound proxy and the app, the share of the machine
 * left idle (from /proc/stat), and the machine's busy µs per call (everything, wrk included).
 *
 * `deno run -A bench/machine_share.ts [--rounds 3] [--duration 5] [--workers N] [--skein-only]`
 * @module
 */
import { cpuMs, type HeldTopology, holdTopology } from "./held_topology.ts";
import { WARMUP_SEC } from "./mesh_bench.ts";

/** Idle and total jiffies of the whole machine so far. */
async function machineJiffies(): Promise<{ idle: number; total: number }> {
  const first = (await Deno.readTextFile("/proc/stat")).split("\n")[0]!;
  const v = first.trim().split(/\s+/).slice(1).map(Number);
  return { idle: v[3]! + v[4]!, total: v.reduce((a, b) => a + b, 0) };
}

/** One wrk run against `name`, printed as a row (marked when it is a warm-up). */
async function measure(t: HeldTopology, name: string, dur: number, warmUp = false): Promise<void> {
  const target = t.targets.get(name);
  if (target === undefined) throw new Error(`no target ${name}`);
  if (t.app === null) throw new Error("this checkout's mesh_bench.ts does not print the app pid");
  const pids = [...target.pids, t.app];
  const before = await Promise.all(pids.map(cpuMs));
  const m0 = await machineJiffies();
  const out = await new Deno.Command("wrk", {
    args: ["-t1", "-c32", `-d${dur}s`, `http://127.0.0.1:${target.port}/`],
    stdout: "piped",
  }).output();
  const after = await Promise.all(pids.map(cpuMs));
  const m1 = await machineJiffies();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(new TextDecoder().decode(out.stdout))?.[1]);
  const calls = rps * dur;
  const per = pids.map((_, i) => ((after[i]! - before[i]!) * 1000 / calls).toFixed(1));
  const total = m1.total - m0.total;
  const idle = m1.idle - m0.idle;
  // A jiffy is 10 ms; busy jiffies over calls gives the machine's µs per call.
  const busyPerCall = (total - idle) * 10_000 / calls;
  console.log(
    `${name.padEnd(13)} ${rps.toFixed(0).padStart(6)} req/s  µs/call in ${per[0]} out ${
      per[1]
    } app ${per[2]}  idle ${(100 * idle / total).toFixed(1)}%  machine ${
      busyPerCall.toFixed(1)
    } µs/call${warmUp ? "  (warm-up)" : ""}`,
  );
}

if (import.meta.main) {
  const args = Deno.args;
  const opt = (name: string): string | null => {
    const i = args.indexOf(`--${name}`);
    return i === -1 ? null : args[i + 1] ?? null;
  };
  const rounds = Number(opt("rounds") ?? 3);
  const dur = Number(opt("duration") ?? 5);
  const skeinOnly = args.includes("--skein-only");
  const workers = opt("workers");
  const root = new URL("..", import.meta.url).pathname;
  const t = await holdTopology(root, {}, workers !== null ? ["--workers", workers] : []);
  try {
    // Warm-up: JIT, heap, pools, mux sessions (the benchmark's own, see WARMUP_SEC).
    if (!skeinOnly) await measure(t, "haproxy-mtls", WARMUP_SEC, true);
    await measure(t, "skein-mtls", WARMUP_SEC, true);
    for (let r = 0; r < rounds; r++) {
      if (!skeinOnly) await measure(t, "haproxy-mtls", dur);
      await measure(t, "skein-mtls", dur);
    }
  } finally {
    t.child.kill("SIGINT");
  }
}
