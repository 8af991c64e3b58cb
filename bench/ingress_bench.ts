/**
 * Ingress benchmark: an outside HTTPS client through a gateway and one mutual-TLS hop to the
 * app's proxy, skein beside HAProxy doing the same.
 *
 * - skein: a gateway proxy (`gateway: bench-gw`, enrolled with a `--gateway` join token from a
 *   one-node `skein control`) terminates TLS on an `ingress` listener with an openssl leaf and
 *   calls the app's proxy over mTLS as `spiffe://<td>/gateway/bench-gw`; that proxy hands the
 *   call to the app.
 * - HAProxy: a front haproxy terminates TLS with the same leaf and forwards over mTLS
 *   (`server ... ssl crt ... verify required`) to a back haproxy (`bind ... ssl crt ...
 *   verify required`) in front of the app.
 *
 * The client is `wrk -t1 -c32` over HTTPS (wrk cannot present client certificates, and needs
 * none here: only the hop behind the gateway is mutual). Rounds are interleaved and the median
 * reported, with CPU per request of each pair's two processes from /proc.
 *
 * `deno run -A bench/ingress_bench.ts [--duration 10] [--rounds 3] [--workers N|auto] [--hold]`
 * (skein's proxies run with `workers: 1` unless told, as a proxy.yaml without `workers` does);
 * `--hold` sets up both pairs, prints the app's process id and each target's port and process
 * ids, and waits for Ctrl-C (for perf, strace or `top` against a live topology, and for
 * bench/ingress_ab.ts), then stops every process it started;
 * `SKEIN_BENCH_PROFILE_DIR=dir` writes a V8 CPU profile of each skein proxy to `dir`;
 * `runIngressBench()` for bench/run.ts (`deno task bench ingress`).
 * @module
 */
import { createJoinToken } from "../tests/skein_cli.ts";
import { makeHaproxyPki, skeinArgs, startBenchControl } from "./apps/mtls_setup.ts";
import { cpuMs, freePort, ROUND_WARMUP_SEC, waitPort, WARMUP_SEC } from "./mesh_bench.ts";
import { machineTicks, readSched, type SchedShare, schedShare } from "./sched_share.ts";

const ROOT = new URL("./", import.meta.url).pathname;
/** Tries (50 ms apart) for the gateway to learn the app's endpoint from the control node. */
const READY_TRIES = 400;

/** Options of {@linkcode runIngressBench}. */
export interface IngressBenchOptions {
  /** wrk seconds per measured round. @default 10 */
  durationSec?: number;
  /** Interleaved rounds per target; the median is reported. @default 3 */
  rounds?: number;
  /** wrk connections. @default 32 */
  connections?: number;
  /**
   * `workers` of both skein proxies. The proxy's own default (one), which is the configuration
   * a user meets; `--workers auto` measures one per CPU (HAProxy's default, `nbthread`).
   * @default 1
   */
  workers?: number | "auto";
  /** Seconds of load before the first round of each target. @default WARMUP_SEC */
  warmupSec?: number;
  /** Where progress and the table go. @default stdout */
  print?: (line: string) => void;
  /** Set everything up, print where it listens, and wait for Ctrl-C. @default false */
  hold?: boolean;
}

/** One target's figures. */
export interface IngressTarget {
  /** "haproxy-ingress" or "skein-ingress". */
  name: string;
  /** Median requests per second. */
  rps: number;
  /** Every round's requests per second, in run order. */
  rpsRounds: number[];
  /** wrk p99 of the median round, ms. */
  p99Ms: number;
  /** Non-2xx answers and socket errors over all rounds. */
  errors: number;
  /** CPU per request of each process (front first), µs, median over rounds. */
  cpuUsPerReq: number[];
  /**
   * Where the median round's wall time went for the pair's two processes and then the app
   * (see bench/sched_share.ts), and the machine's idle share in that round, in percent.
   */
  sched: { processes: SchedShare[]; machineIdle: number };
}

async function _wrkHttps(port: number, sec: number, conns: number) {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${conns}`, `-d${sec}s`, "--latency", `https://127.0.0.1:${port}/`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(text);
  const p99Ms = p99 === null
    ? NaN
    : Number(p99[1]) * (p99[2] === "us" ? 0.001 : p99[2] === "s" ? 1000 : 1);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const sockErr = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, p99Ms, errors: non2xx + sockErr };
}

/** Waits until an HTTPS GET through `port` reaches the app (the route is learned). */
async function _waitThrough(port: number, what: string): Promise<void> {
  let last = "";
  for (let i = 0; i < READY_TRIES; i++) {
    const out = await new Deno.Command("curl", {
      args: ["-sk", "-o", "/dev/null", "-w", "%{http_code}", `https://127.0.0.1:${port}/`],
      stdout: "piped",
      stderr: "null",
    }).output();
    last = new TextDecoder().decode(out.stdout);
    if (last === "200") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: no 200 through port ${port} (last status ${last})`);
}

/** The front haproxy: TLS termination, then mutual TLS to the back one. */
function _frontConfig(
  bind: number,
  to: number,
  pki: { ca: string; server: string; client: string },
) {
  return [
    "global",
    "  maxconn 4000",
    "  ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3",
    "  ssl-default-server-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3",
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    "  option http-keep-alive",
    "frontend fe",
    `  bind 127.0.0.1:${bind} ssl crt ${pki.server}`,
    "  default_backend be",
    "backend be",
    `  server s1 127.0.0.1:${to} ssl crt ${pki.client} ca-file ${pki.ca} verify required`,
    "",
  ].join("\n");
}

/** The back haproxy: mutual TLS in, plain HTTP to the app. */
function _backConfig(bind: number, to: number, pki: { ca: string; server: string }) {
  return _frontConfig(bind, to, { ...pki, client: "" })
    .replace(
      ` ssl crt ${pki.server}\n`,
      ` ssl crt ${pki.server} ca-file ${pki.ca} verify required\n`,
    )
    .replace(/ {2}server s1 .*\n/, `  server s1 127.0.0.1:${to}\n`);
}

/** Runs the benchmark; always stops what it started. */
export async function runIngressBench(opts: IngressBenchOptions = {}): Promise<IngressTarget[]> {
  const print = opts.print ??
    ((l: string) => Deno.stdout.writeSync(new TextEncoder().encode(l + "\n")));
  const dur = opts.durationSec ?? 10;
  const rounds = Math.max(1, opts.rounds ?? 3);
  const conns = opts.connections ?? 32;
  const workers = opts.workers ?? 1;
  const children: Deno.ChildProcess[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "skein-ingress-bench-" });
  const spawn = (cmd: string, args: string[]) => {
    const c = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
    children.push(c);
    return c;
  };
  try {
    const appPort = freePort();
    spawn(Deno.execPath(), ["run", "-A", `${ROOT}apps/backend.ts`, "--port", String(appPort)]);
    await waitPort(appPort, "backend");
    const pki = await makeHaproxyPki(tmp);
    const targets: { name: string; port: number; pids: number[] }[] = [];

    const haveHaproxy = (await new Deno.Command("sh", {
      args: ["-c", "command -v haproxy"],
      stdout: "null",
    }).output()).success;
    if (haveHaproxy) {
      const back = freePort(), front = freePort();
      await Deno.writeTextFile(`${tmp}/back.cfg`, _backConfig(back, appPort, pki));
      await Deno.writeTextFile(`${tmp}/front.cfg`, _frontConfig(front, back, pki));
      const b = spawn("haproxy", ["-db", "-f", `${tmp}/back.cfg`]);
      await waitPort(back, "haproxy back");
      const f = spawn("haproxy", ["-db", "-f", `${tmp}/front.cfg`]);
      await waitPort(front, "haproxy front");
      await _waitThrough(front, "haproxy");
      targets.push({ name: "haproxy-ingress", port: front, pids: [f.pid, b.pid] });
    } else {
      print("# haproxy is not installed: no peer to compare");
    }

    const cp = await startBenchControl(tmp, freePort(), spawn);
    await Deno.writeTextFile(`${tmp}/app.token`, await createJoinToken(cp.url, cp.token, "app"));
    await Deno.writeTextFile(
      `${tmp}/gw.token`,
      await createJoinToken(cp.url, cp.token, "bench-gw", "1h", "gateway"),
    );
    const common = (node: string) => ({
      node,
      control: [cp.url],
      ca_file: cp.caFile,
      data_dir: `${tmp}/${node}`,
      admin: "127.0.0.1:0",
      inbound: "127.0.0.1:0",
      workers,
      log: { level: "error" },
    });
    const inPort = freePort(), gwPort = freePort();
    await Deno.writeTextFile(
      `${tmp}/px-app.yaml`,
      JSON.stringify({
        ...common("px-app"),
        inbound: `127.0.0.1:${inPort}`,
        token_file: `${tmp}/app.token`,
        services: [{ name: "app", port: appPort }],
      }),
    );
    await Deno.writeTextFile(
      `${tmp}/gw.yaml`,
      JSON.stringify({
        ...common("gw"),
        token_file: `${tmp}/gw.token`,
        gateway: "bench-gw",
        ingress: [{
          listen: `127.0.0.1:${gwPort}`,
          tls: { cert_file: `${tmp}/server.crt`, key_file: `${tmp}/server.key` },
          routes: [{ service: "app" }],
          // wrk's 32 connections all come from 127.0.0.1.
          limits: { max_connections_per_address: 1024 },
        }],
      }),
    );
    // SKEIN_BENCH_PROFILE_DIR=dir writes a V8 CPU profile of each skein proxy there on exit.
    const profDir = Deno.env.get("SKEIN_BENCH_PROFILE_DIR");
    const arg = (cfg: string) => {
      const a = skeinArgs(["proxy", "--config", cfg, "--log-level", "error"]);
      return profDir ? [a[0]!, "--cpu-prof", `--cpu-prof-dir=${profDir}`, ...a.slice(1)] : a;
    };
    const pxApp = spawn(Deno.execPath(), arg(`${tmp}/px-app.yaml`));
    await waitPort(inPort, "skein app proxy");
    const gw = spawn(Deno.execPath(), arg(`${tmp}/gw.yaml`));
    await waitPort(gwPort, "skein gateway");
    await _waitThrough(gwPort, "skein gateway");
    targets.push({ name: "skein-ingress", port: gwPort, pids: [gw.pid, pxApp.pid] });
    if (opts.hold === true) {
      // Profiling aid: leave both pairs up and say where each listens.
      print(`hold: app pid=${children[0]!.pid}`);
      for (const t of targets) print(`hold: ${t.name} port=${t.port} pids=${t.pids.join(",")}`);
      // Until SIGINT (Ctrl-C, or bench/ingress_ab.ts ending): then the cleanup below stops
      // every process started here, which the default signal handling would leave running.
      await new Promise<void>((resolve) => Deno.addSignalListener("SIGINT", resolve));
      return [];
    }

    print(`# skein proxies with workers: ${workers}`);
    for (const t of targets) await _wrkHttps(t.port, opts.warmupSec ?? WARMUP_SEC, conns);
    const runs = new Map(
      targets.map((t) => [t.name, [] as Awaited<ReturnType<typeof _wrkHttps>>[]]),
    );
    const cpu = new Map(targets.map((t) => [t.name, [] as number[][]]));
    const sched = new Map(
      targets.map((t) => [t.name, [] as { processes: SchedShare[]; machineIdle: number }[]]),
    );
    const appPid = children[0]!.pid;
    for (let round = 1; round <= rounds; round++) {
      for (const t of targets) {
        print(`# round ${round}/${rounds}: ${t.name}, wrk -t1 -c${conns} -d${dur}s https`);
        await _wrkHttps(t.port, ROUND_WARMUP_SEC, conns);
        const watched = [...t.pids, appPid];
        const c0 = await Promise.all(t.pids.map(cpuMs));
        const s0 = await Promise.all(watched.map(readSched));
        const m0 = await machineTicks();
        const t0 = performance.now();
        const w = await _wrkHttps(t.port, dur, conns);
        const wallNs = (performance.now() - t0) * 1e6;
        const m1 = await machineTicks();
        const s1 = await Promise.all(watched.map(readSched));
        const c1 = await Promise.all(t.pids.map(cpuMs));
        sched.get(t.name)!.push({
          processes: watched.map((pid, i) => schedShare(pid, s0[i]!, s1[i]!, wallNs)),
          machineIdle: (100 * (m1.idle - m0.idle)) / (m1.total - m0.total),
        });
        runs.get(t.name)!.push(w);
        cpu.get(t.name)!.push(c1.map((c, i) => ((c - c0[i]!) * 1000) / (w.rps * dur)));
      }
    }
    const out: IngressTarget[] = targets.map((t) => {
      const rs = runs.get(t.name)!;
      const median = [...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)]!;
      const medianRound = rs.indexOf(median);
      return {
        name: t.name,
        rps: median.rps,
        rpsRounds: rs.map((r) => r.rps),
        p99Ms: median.p99Ms,
        errors: rs.reduce((n, r) => n + r.errors, 0),
        sched: sched.get(t.name)![medianRound]!,
        cpuUsPerReq: t.pids.map((_, i) => {
          const v = cpu.get(t.name)!.map((r) => r[i]!).sort((a, b) => a - b);
          return v[Math.floor(v.length / 2)]!;
        }),
      };
    });
    print("");
    print("| target | req/s (median) | rounds | p99 ms | CPU µs/req (front, back) | errors |");
    print("| --- | --- | --- | --- | --- | --- |");
    for (const r of out) {
      print(
        `| ${r.name} | ${r.rps.toFixed(0)} | ${r.rpsRounds.map((x) => x.toFixed(0)).join(", ")} | ${
          r.p99Ms.toFixed(2)
        } | ${r.cpuUsPerReq.map((x) => x.toFixed(1)).join(", ")} | ${r.errors} |`,
      );
    }
    const ha = out.find((r) => r.name === "haproxy-ingress");
    const sk = out.find((r) => r.name === "skein-ingress")!;
    print("");
    print(
      "Where the median round's time went (main thread on a CPU / waiting for one / asleep;" +
        " all threads on a CPU):",
    );
    print("| target | machine idle | front | back | app |");
    print("| --- | --- | --- | --- | --- |");
    const f = (x: SchedShare) =>
      `${x.mainOnCpu.toFixed(0)} / ${x.mainWaiting.toFixed(0)} / ${x.mainSleeping.toFixed(0)}%; ${
        x.allOnCpu.toFixed(0)
      }%`;
    for (const r of out) {
      print(
        `| ${r.name} | ${r.sched.machineIdle.toFixed(0)}% | ${
          r.sched.processes.map(f).join(" | ")
        } |`,
      );
    }
    if (ha !== undefined) print(`\nskein / HAProxy req/s: ${(sk.rps / ha.rps).toFixed(2)}x`);
    return out;
  } finally {
    for (const c of children.reverse()) {
      try {
        c.kill("SIGTERM");
      } catch {
        // Gone already.
      }
      await c.status;
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i < 0 ? undefined : Deno.args[i + 1];
  };
  const w = arg("workers");
  await runIngressBench({
    durationSec: arg("duration") ? Number(arg("duration")) : undefined,
    rounds: arg("rounds") ? Number(arg("rounds")) : undefined,
    warmupSec: arg("warmup") ? Number(arg("warmup")) : undefined,
    workers: w === undefined ? undefined : w === "auto" ? "auto" : Number(w),
    hold: Deno.args.includes("--hold"),
  });
}
