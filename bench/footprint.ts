/**
 * Memory benchmark (`deno task bench footprint`): RSS and PSS of skein's proxies beside
 * HAProxy's in one run, on the mTLS topology of `bench/mesh_bench.ts --mtls --hold`
 * (outbound proxy -> mTLS -> inbound proxy -> app; HAProxy the same with openssl leaves).
 *
 * For `workers: 1` (the default) and `workers: 2`: each proxy process idle (after start-up,
 * before any call), its peak under `wrk -t1 -c32` and idle again after the load; the control
 * node idle. One extra worker costs the difference per process between the two runs.
 *
 * Then one control node alone: idle, and with 10,000 registered instances (4 services of 2,500:
 * a service holds at most 4,096) and 1,000 blocking catalog queries (curl processes from four
 * loopback addresses, since one address may hold only 256).
 *
 * `deno task bench soak [--minutes 30] [--rate 1000]` holds the default topology and sends
 * calls at a fixed rate, printing each skein proxy's RSS and PSS every minute and the spread
 * after the first minute (the target: flat within 5 MB). Not a CI test.
 * @module
 */
import { type HeldTopology, holdTopology } from "./held_topology.ts";
import { mb, type MemoryKiB, processMemory } from "./apps/proc_memory.ts";
import { fixedRate } from "./apps/fixed_rate.ts";
import { startBenchControl } from "./apps/mtls_setup.ts";
import { testFetch } from "../tests/tls_fixture.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** Seconds a topology rests after start-up before its idle reading. */
const SETTLE_SEC = 5;
/** wrk run length for the under-load reading, seconds. */
const LOAD_SEC = 10;
const CONNECTIONS = 32;

/** One process's readings in a footprint run, KiB. */
export interface ProcessFootprint {
  target: string;
  role: string;
  pid: number;
  idle: MemoryKiB;
  load: MemoryKiB;
  after: MemoryKiB;
}

/** A held topology's process ids by row: `haproxy-mtls`, `skein-mtls`, control. */
interface Held {
  topology: HeldTopology;
  control: number | null;
}

async function _hold(workers: number): Promise<Held> {
  const topology = await holdTopology(ROOT, {}, ["--workers", String(workers)]);
  return { topology, control: topology.control };
}

function _stop(h: Held): void {
  try {
    h.topology.child.kill("SIGINT");
  } catch {
    // already gone
  }
}

const _sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs wrk against `port` while sampling `pids`; returns each pid's peak reading. */
async function _underLoad(port: number, pids: number[]): Promise<MemoryKiB[]> {
  const peak = pids.map(() => ({ rss: 0, pss: 0 }));
  const wrk = new Deno.Command("wrk", {
    args: ["-t1", `-c${CONNECTIONS}`, `-d${LOAD_SEC}s`, `http://127.0.0.1:${port}/`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let done = false;
  const status = wrk.status.then((s) => {
    done = true;
    return s;
  });
  while (!done) {
    const now = await Promise.all(pids.map(processMemory));
    now.forEach((m, i) => {
      peak[i]!.rss = Math.max(peak[i]!.rss, m.rss);
      peak[i]!.pss = Math.max(peak[i]!.pss, m.pss);
    });
    await Promise.race([status, _sleep(500)]);
  }
  return peak;
}

/** Measures one held topology's targets and control node. */
async function _measure(h: Held): Promise<ProcessFootprint[]> {
  await _sleep(SETTLE_SEC * 1000);
  const rows: ProcessFootprint[] = [];
  for (const name of ["haproxy-mtls", "skein-mtls"]) {
    const t = h.topology.targets.get(name);
    if (!t) continue;
    const idle = await Promise.all(t.pids.map(processMemory));
    const load = await _underLoad(t.port, t.pids);
    await _sleep(2000);
    const after = await Promise.all(t.pids.map(processMemory));
    t.pids.forEach((pid, i) =>
      rows.push({
        target: name,
        role: i === 0 ? "inbound" : "outbound",
        pid,
        idle: idle[i]!,
        load: load[i]!,
        after: after[i]!,
      })
    );
  }
  if (h.control !== null) {
    const m = await processMemory(h.control);
    rows.push({
      target: "skein control",
      role: "1 node",
      pid: h.control,
      idle: m,
      load: m,
      after: m,
    });
  }
  return rows;
}

function _table(title: string, rows: ProcessFootprint[]): string {
  const head =
    "target          role       RSS idle  PSS idle  RSS c32  PSS c32  RSS after  PSS after";
  const lines = rows.map((r) =>
    [
      r.target.padEnd(15),
      r.role.padEnd(9),
      mb(r.idle.rss).padStart(9),
      mb(r.idle.pss).padStart(9),
      mb(r.load.rss).padStart(8),
      mb(r.load.pss).padStart(8),
      mb(r.after.rss).padStart(10),
      mb(r.after.pss).padStart(10),
    ].join(" ")
  );
  return [title, head, ...lines].join("\n");
}

function _mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

/** Runs the footprint benchmark and prints its tables; returns every reading. */
export async function runFootprintBench(
  print: (line: string) => void = console.log,
): Promise<Record<number, ProcessFootprint[]>> {
  const out: Record<number, ProcessFootprint[]> = {};
  for (const workers of [1, 2]) {
    print(`# holding the mTLS topology with workers: ${workers}`);
    const h = await _hold(workers);
    try {
      out[workers] = await _measure(h);
    } finally {
      _stop(h);
    }
    print(_table(`\nworkers: ${workers} (MiB; c32 = peak under wrk -c32)`, out[workers]!));
    await _sleep(2000);
  }
  const skein = (w: number, pick: (r: ProcessFootprint) => number) =>
    _mean(out[w]!.filter((r) => r.target === "skein-mtls").map(pick));
  const perWorker = (pick: (r: ProcessFootprint) => number) => skein(2, pick) - skein(1, pick);
  print(
    `\nper extra worker (mean per skein proxy, workers 2 - workers 1): ` +
      `idle RSS ${mb(perWorker((r) => r.idle.rss))} PSS ${mb(perWorker((r) => r.idle.pss))}, ` +
      `c32 RSS ${mb(perWorker((r) => r.load.rss))} PSS ${mb(perWorker((r) => r.load.pss))}`,
  );
  print(
    "targets: proxy (workers 1) <= 50M RSS under c32, <= 40M idle; extra worker <= 15M; " +
      "control node <= 60M idle",
  );
  if (!Deno.args.includes("--no-control-load")) await runControlLoad(print);
  return out;
}

const INSTANCES = 10_000;
const SERVICES = 4;
const WATCHERS = 1_000;
const WATCHER_ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];

/** The control node's idle and loaded readings, KiB. */
export interface ControlFootprint {
  idle: MemoryKiB;
  loaded: MemoryKiB;
  peak: MemoryKiB;
  instances: number;
  watchers: number;
}

async function _metric(url: string, token: string, name: string): Promise<number> {
  const r = await testFetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const text = await r.text();
  return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
}

/** One control node idle, then holding `INSTANCES` instances and `WATCHERS` blocking queries. */
export async function runControlLoad(
  print: (line: string) => void = console.log,
): Promise<ControlFootprint> {
  const tmp = await Deno.makeTempDir({ prefix: "skein-footprint-" });
  const children: Deno.ChildProcess[] = [];
  const spawn = (cmd: string, args: string[]) => {
    const c = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
    children.push(c);
    return c;
  };
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const cp = await startBenchControl(tmp, port, spawn);
    await _sleep(SETTLE_SEC * 1000);
    const idle = await processMemory(cp.pid);
    const headers = { "content-type": "application/json", authorization: `Bearer ${cp.token}` };
    let next = 0;
    let failed = 0;
    // Heartbeats for every instance registered so far (1,000 per call), so no lease runs out:
    // an expiry is a write, and a write wakes every blocking query.
    let beating = true;
    const heartbeats = (async () => {
      while (beating) {
        const upTo = next;
        for (let from = 0; from < upTo; from += 1000) {
          const instances = [];
          for (let i = from; i < Math.min(upTo, from + 1000); i++) {
            instances.push({ service: `svc-${i % SERVICES}`, id: `i-${i}` });
          }
          const r = await testFetch(`${cp.url}/v1/heartbeat`, {
            method: "PUT",
            headers,
            body: JSON.stringify({ instances }),
          }).catch(() => null);
          await r?.body?.cancel();
        }
        await _sleep(3000);
      }
    })();
    // A few writers at a time: each registration is one Raft commit.
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < INSTANCES) {
        const i = next++;
        const r = await testFetch(`${cp.url}/v1/services/svc-${i % SERVICES}/instances/i-${i}`, {
          method: "PUT",
          headers,
          body: JSON.stringify({ address: `10.0.${i >> 8 & 255}.${i & 255}`, port: 8080 }),
        });
        await r.body?.cancel();
        if (r.status !== 200 && r.status !== 201) failed++;
      }
    }));
    // The index a blocking query waits past is the state's (this header, from a blocking
    // read: a plain read can answer with an older one); taken once 5 s pass without a write.
    let index = 0;
    for (let i = 0; i < 60; i++) {
      const cat = await testFetch(`${cp.url}/v1/catalog?index=${index}&wait=5s`, { headers });
      await cat.body?.cancel();
      const now = Number(cat.headers.get("x-skein-index"));
      if (now === index) break;
      index = now;
    }
    const per = Math.ceil(WATCHERS / WATCHER_ADDRESSES.length);
    for (const addr of WATCHER_ADDRESSES) {
      // One curl per source address, its queries in parallel; the glob only varies `wait`.
      spawn("curl", [
        "-s",
        "-o",
        "/dev/null",
        "--parallel",
        "--parallel-immediate",
        "--parallel-max",
        String(per),
        "--interface",
        addr,
        "--cacert",
        cp.caFile,
        "-H",
        `authorization: Bearer ${cp.token}`,
        `${cp.url}/v1/catalog?index=${index}&wait=[${240}-${240 + per - 1}]s`,
      ]);
    }
    // Peak too: a change (an instance's lease running out, say) wakes every query at once, and
    // each answer then carries the whole catalog.
    let waiting = 0;
    const peak = { rss: 0, pss: 0 };
    const sample = async () => {
      const m = await processMemory(cp.pid);
      peak.rss = Math.max(peak.rss, m.rss);
      peak.pss = Math.max(peak.pss, m.pss);
      return m;
    };
    for (let i = 0; i < 120 && waiting < WATCHERS; i++) {
      await _sleep(500);
      await sample();
      waiting = await _metric(cp.url, cp.token, "skein_control_blocking_queries");
    }
    await _sleep(2000);
    const loaded = await sample();
    beating = false;
    await heartbeats;
    const instances = INSTANCES - failed;
    print(
      `\ncontrol node: idle RSS ${mb(idle.rss)} PSS ${mb(idle.pss)}; with ${instances} instances ` +
        `and ${waiting} of ${WATCHERS} queries waiting RSS ${mb(loaded.rss)} PSS ${
          mb(loaded.pss)
        }, ` +
        `peak while they connected RSS ${mb(peak.rss)} PSS ${mb(peak.pss)} ` +
        "(targets: <= 60M idle, <= 150M loaded)",
    );
    return { idle, loaded, peak, instances, watchers: waiting };
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    await Promise.allSettled(children.map((c) => c.status));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Holds the default topology and sends `rate` calls/s for `minutes`, printing memory each minute. */
export async function runSoak(
  minutes: number,
  rate: number,
  print: (line: string) => void = console.log,
): Promise<void> {
  const h = await _hold(1);
  try {
    const t = h.topology.targets.get("skein-mtls");
    if (!t) throw new Error("the topology has no skein-mtls target");
    await _sleep(SETTLE_SEC * 1000);
    const series: MemoryKiB[][] = [];
    print(`soak: ${rate} req/s for ${minutes} min through skein-mtls (pids ${t.pids.join(",")})`);
    for (let m = 1; m <= minutes; m++) {
      const r = await fixedRate({ port: t.port, rate, durationSec: 60 });
      const now = await Promise.all(t.pids.map(processMemory));
      series.push(now);
      print(
        `min ${String(m).padStart(2)}: ` +
          now.map((x, i) => `${i === 0 ? "in" : "out"} RSS ${mb(x.rss)} PSS ${mb(x.pss)}`)
            .join(", ") +
          `  (${r.completed} calls, ${r.errors} errors, p99 ${r.p99Ms.toFixed(2)} ms)`,
      );
    }
    // The first minute grows the heaps to their working size; flatness is judged after it.
    const rest = series.slice(1);
    t.pids.forEach((_, i) => {
      const rss = rest.map((s) => s[i]!.rss);
      if (rss.length === 0) return;
      print(
        `${i === 0 ? "inbound" : "outbound"}: RSS spread after minute 1 ` +
          `${mb(Math.max(...rss) - Math.min(...rss))} (target <= 5M)`,
      );
    });
  } finally {
    _stop(h);
  }
}

if (import.meta.main) {
  const arg = (name: string, dflt: number) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i === -1 ? dflt : Number(Deno.args[i + 1]);
  };
  if (Deno.args.includes("--soak")) await runSoak(arg("minutes", 30), arg("rate", 1000));
  else if (Deno.args.includes("--control-only")) await runControlLoad();
  else await runFootprintBench();
  Deno.exit(0);
}
