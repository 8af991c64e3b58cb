/**
 * Data-plane benchmark: the two-hop path app -> proxy -> proxy -> app, side by side for
 * (a) the app direct, (b) HAProxy two hops (two haproxy processes, its default threads),
 * and (c) in plaintext mode the bare skein forwarder two hops (two single-threaded `deno run`
 * processes, no router or policy). A plaintext `skein proxy` pair is no longer possible: since
 * zero trust a proxy refuses to start without an identity. Each runs `wrk -t1 -c32`, then a fixed-rate run for added latency, and
 * samples proxy RSS idle and under load from /proc.
 *
 * `--mtls` measures the proxy-to-proxy hop over mutual TLS instead: the skein row is two
 * proxies enrolled with join tokens from a one-node `skein control` (outbound -> inbound over
 * mTLS -> app), the HAProxy row an outbound haproxy with `server ... ssl crt ... verify
 * required` to an inbound haproxy `bind ... ssl crt ... verify required`, with an openssl EC
 * P-256 CA and leaves; `workers` threads per skein proxy, each terminating mTLS. The bare
 * forwarder row is left out (it has no TLS). `SKEIN_BENCH_PROFILE_DIR=dir` writes a V8 CPU
 * profile of each skein proxy to `dir`.
 *
 * `deno run -A bench/mesh_bench.ts [--duration 10] [--rate 1000] [--rounds 3] [--workers N]
 * [--mtls [--ab-outbound | --observe-pair]] [--observe | --observe-log | --observe-trace] [--hold]`
 * (`--observe*` on the skein pair itself, or with `--observe-pair` on a second pair only);
 * `--hold` sets up every target, prints the app's process id and each target's port and process
 * ids, and waits for Ctrl-C (for profiling with perf or `top` against a live topology);
 * `runMeshBench()` for bench/run.ts.
 * @module
 */
import { fixedRate } from "./apps/fixed_rate.ts";
import { createJoinToken } from "../tests/skein_cli.ts";
import { testFetch } from "../tests/tls_fixture.ts";
import {
  answersPlaintext,
  haproxyConfig,
  makeHaproxyPki,
  skeinArgs,
  startBenchControl,
} from "./apps/mtls_setup.ts";

/** Options for {@linkcode runMeshBench}. */
export interface MeshBenchOptions {
  /** wrk duration per target, seconds. @default 10 */
  durationSec?: number;
  /** wrk connections. @default 32 */
  connections?: number;
  /** Fixed-rate requests per second for the latency run. @default 1000 */
  rate?: number;
  /** Fixed-rate run length, seconds. @default 5 */
  rateDurationSec?: number;
  /**
   * wrk rounds per target, interleaved (a, b, c, a, b, c...) so load from other work on the
   * machine hits every target alike; the median round is reported. @default 3
   */
  rounds?: number;
  /** Where progress and the table go. @default stdout */
  print?: (line: string) => void;
  /** `workers` of the two `skein proxy` processes. @default "auto" */
  workers?: number | "auto";
  /**
   * Ignored: plaintext mode always runs the bare forwarder row (a `skein proxy` needs an
   * identity, so it is the only plaintext skein row left), mTLS mode never does.
   */
  bareForwarder?: boolean;
  /** Mutual TLS on the proxy-to-proxy hop for both skein and HAProxy. @default false */
  mtls?: boolean;
  /**
   * With `mtls`: one more target, "skein-mtls-nomux", a second pair of proxies (service "app-b",
   * in front of the same app) whose outbound one sends each call on its own pooled mesh
   * connection (`SKEIN_MESH_MUX=off`, native TLS client) instead of as skein-mux/1 streams,
   * measured in the same interleaved rounds.
   * @default false
   */
  abOutbound?: boolean;
  /** Set up every target, print its port and process ids, and wait for Ctrl-C. */
  hold?: boolean;
  /**
   * Puts a Route of two weighted backends in force for the skein pair (`--route`), to show
   * what the Route layer costs on the request path.
   */
  route?: boolean;
  /**
   * Turns on an access log to a file and tracing at 1% sampling towards a collector that is
   * down, on both skein proxies (`--observe`), to show what observability costs;
   * `--observe-log` or `--observe-trace` turns on only that half, to tell their costs
   * apart.
   */
  observe?: boolean | "log" | "trace";
  /**
   * With `mtls`: the second pair of proxies (see `abOutbound`) keeps the mux and runs with this
   * observability instead, as "skein-mtls-observe", so its cost is read as the ratio of two
   * targets measured in the same interleaved rounds (the first pair has it off) rather than
   * from two runs minutes apart. Takes the place of the no-mux pair.
   */
  observePair?: boolean | "log" | "trace";
}

/** Measurements for one target. */
export interface BenchTarget {
  /**
   * "direct", "haproxy-2hop", "skein-2hop" (skein proxy processes), "skein-fwd-2hop", or in
   * mTLS mode "haproxy-mtls" and "skein-mtls".
   */
  name: string;
  /** wrk throughput, median over rounds. */
  rps: number;
  /** wrk throughput of every round, in run order. */
  rpsRounds: number[];
  /** wrk latency percentiles at saturation, ms. */
  wrkP50Ms: number;
  /** wrk latency percentiles at saturation, ms. */
  wrkP99Ms: number;
  /** Latency at the fixed rate, ms. */
  fixedP50Ms: number;
  /** Latency at the fixed rate, ms. */
  fixedP99Ms: number;
  /** Non-2xx/errors seen by wrk plus fixed-rate errors. */
  errors: number;
  /** Summed RSS of the proxy processes before load, KiB (0 for direct). */
  rssIdleKiB: number;
  /** Summed peak RSS of the proxy processes sampled during load, KiB (0 for direct). */
  rssLoadKiB: number;
  /**
   * CPU time per request of each proxy process (inbound first), µs, median over rounds:
   * user + system time from /proc over the wrk run divided by the requests it served. Less
   * sensitive than req/s to other work competing for the cores.
   */
  cpuUsPerReq: number[];
}

/** Everything one benchmark run measured. */
export interface BenchResult {
  /** Per-target measurements. */
  targets: BenchTarget[];
  /** skein throughput / HAProxy throughput (null if HAProxy was unavailable). */
  skeinVsHaproxyRps: number | null;
  /** skein throughput / direct throughput. */
  skeinVsDirectRps: number;
  /**
   * With `observePair`: the observed pair's throughput over the first pair's (observability
   * off), from the same interleaved rounds; else null.
   */
  observeVsOffRps: number | null;
  /** Added p50 latency at the fixed rate vs direct, ms, per proxy. */
  addedP50Ms: Record<string, number>;
  /** Added p99 latency at the fixed rate vs direct, ms, per proxy. */
  addedP99Ms: Record<string, number>;
  /** Caveats, e.g. missing tools. */
  notes: string[];
}

const ROOT = new URL("./", import.meta.url).pathname;
/** How long the mTLS outbound proxy may take to learn the inbound endpoint from control. */
const MESH_READY_TRIES = 400;

/** A free port on 127.0.0.1 (bind 0, read, release). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

async function which(bin: string): Promise<boolean> {
  const r = await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`], stdout: "null" })
    .output();
  return r.success;
}

async function rssKiB(pid: number): Promise<number> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const _USER_HZ = 100;

/** CPU time (user + system, all threads) a process has used so far, ms; 0 when gone. */
export async function cpuMs(pid: number): Promise<number> {
  try {
    const s = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / _USER_HZ;
  } catch {
    return 0;
  }
}

/** Waits until something accepts connections on the port (bounded). */
export async function waitPort(port: number, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${what} did not start listening on ${port}`);
}

function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

/** Waits until a GET through the proxy pair at `port` reaches the app (bounded). */
async function waitMeshRoute(port: number): Promise<void> {
  let last = "";
  for (let i = 0; i < MESH_READY_TRIES; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
      await r.body?.cancel();
      if (r.status === 200) return;
      last = `status ${r.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no route through the proxies on ${port}: ${last}`);
}

/**
 * Seconds of load on each target before its first measured round. A fresh skein proxy runs its
 * first two seconds at about two thirds of its steady speed (V8 tiering up the hot path, the
 * young generation growing); HAProxy has no such phase. With the 1 s used until session 8 that
 * phase fell inside skein's first round.
 */
export const WARMUP_SEC = 5;
/**
 * Seconds of load on a target right before each of its measured rounds: the other targets' rounds
 * leave it idle for half a minute, after which skein needs a second or two to reach its steady
 * speed again. Every target gets the same.
 */
export const ROUND_WARMUP_SEC = 1;

async function wrk(port: number, dur: number, conns: number) {
  const out = await new Deno.Command("wrk", {
    args: ["-t1", `-c${conns}`, `-d${dur}s`, "--latency", `http://127.0.0.1:${port}/`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const p50 = ms(/\s50%\s+(\S+)/.exec(text)?.[1] ?? "");
  const p99 = ms(/\s99%\s+(\S+)/.exec(text)?.[1] ?? "");
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const sockErr = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, p50, p99, errors: non2xx + sockErr };
}

/** Runs the benchmark; always stops the processes it started. */
export async function runMeshBench(opts: MeshBenchOptions = {}): Promise<BenchResult> {
  const print = opts.print ??
    ((l: string) => Deno.stdout.writeSync(new TextEncoder().encode(l + "\n")));
  const dur = opts.durationSec ?? 10;
  const conns = opts.connections ?? 32;
  const rate = opts.rate ?? 1000;
  const rateDur = opts.rateDurationSec ?? 5;
  const notes: string[] = [];
  if (!(await which("wrk"))) throw new Error("wrk is not installed (apt-get install -y wrk)");
  const haveHaproxy = await which("haproxy");
  if (!haveHaproxy) notes.push("haproxy not installed: HAProxy row skipped");

  const children: Deno.ChildProcess[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "skein-mesh-bench-" });
  const spawn = (cmd: string, args: string[], env?: Record<string, string>) => {
    const c = new Deno.Command(cmd, { args, env, stdout: "null", stderr: "null" }).spawn();
    children.push(c);
    return c;
  };
  const mtls = opts.mtls ?? false;
  const names = mtls
    ? { haproxy: "haproxy-mtls", skein: "skein-mtls" }
    : { haproxy: "haproxy-2hop", skein: "skein-fwd-2hop" };
  const onSignal = () => {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const appPort = freePort();
    const app = spawn(Deno.execPath(), [
      "run",
      "-A",
      `${ROOT}apps/backend.ts`,
      "--port",
      String(appPort),
    ]);
    await waitPort(appPort, "backend");

    // Two real `skein proxy` processes. In plaintext mode the outbound one never reaches a
    // control plane (port 9 is refused at once) and routes from a catalog cache written here;
    // in mTLS mode both enrol with a real control node and learn the route from it.
    const workers = opts.workers ?? "auto";
    const pxInPort = freePort();
    const pxOutPort = freePort();
    // `--route`: a canary split (95/5) between version v1 and any version, same endpoint.
    const route = opts.route
      ? [{
        kind: "Route",
        service: "app",
        rules: [{ backends: [{ version: "v1", weight: 95 }, { weight: 5 }] }],
      }]
      : [];
    if (opts.route) notes.push("skein pair: a Route of two weighted backends (95/5) in force");
    const observePair = mtls && opts.observePair ? opts.observePair : false;
    const second = observePair ? "observe" : mtls && opts.abOutbound ? "nomux" : null;
    const observeNote = (o: true | "log" | "trace") =>
      o === "log"
        ? "access log to a file"
        : o === "trace"
        ? "tracing at 1% to a collector that is down"
        : "access log to a file, tracing at 1% to a collector that is down";
    if (opts.observe) notes.push(`skein pair: ${observeNote(opts.observe)}`);
    if (observePair) notes.push(`skein-mtls-observe pair: ${observeNote(observePair)}`);
    let controlUrls = ["http://127.0.0.1:9"];
    const tokenFiles: Record<string, string> = {};
    let caFile: string | undefined;
    let controlPid: number | null = null;
    if (mtls) {
      const cp = await startBenchControl(tmp, freePort(), spawn);
      controlUrls = [cp.url];
      if (route.length > 0) {
        const r = await testFetch(`${cp.url}/v1/resources`, {
          method: "PUT",
          headers: { authorization: `Bearer ${cp.token}`, "content-type": "application/json" },
          body: JSON.stringify(route),
        });
        if (r.status !== 200) throw new Error(`applying the Route: ${r.status} ${await r.text()}`);
      }
      caFile = cp.caFile;
      controlPid = cp.pid;
      for (const svc of ["app", "client", ...(second !== null ? ["client-b", "app-b"] : [])]) {
        tokenFiles[svc] = `${tmp}/${svc}.token`;
        // client-b is a second proxy of service "client" (a token names the service).
        const service = svc === "client-b" ? "client" : svc;
        await Deno.writeTextFile(
          tokenFiles[svc],
          await createJoinToken(cp.url, cp.token, service),
        );
      }
    }
    const proxyCfg = (
      node: string,
      extra: Record<string, unknown>,
      observe: boolean | "log" | "trace" = opts.observe ?? false,
    ) => ({
      node,
      control: controlUrls,
      data_dir: `${tmp}/${node}`,
      admin: "127.0.0.1:0",
      inbound: "127.0.0.1:0",
      workers,
      log: { level: "error" },
      ...(caFile !== undefined ? { ca_file: caFile } : {}),
      // Port 9 refuses at once: spans are dropped and counted, as with a collector down.
      ...(observe === true || observe === "log"
        ? { access_log: { path: `${tmp}/${node}-access.log`, format: "json" } }
        : {}),
      ...(observe === true || observe === "trace"
        ? { telemetry: { otlp: "http://127.0.0.1:9", sampling: 0.01 } }
        : {}),
      ...extra,
    });
    const pxOutBPort = freePort();
    const pxInBPort = freePort();
    await Deno.mkdir(`${tmp}/px-out`, { recursive: true });
    await Deno.writeTextFile(
      `${tmp}/px-out/catalog.json`,
      JSON.stringify({
        saved_at: Date.now(),
        catalog: {
          index: 1,
          services: {
            app: [{
              id: "px-in-app",
              service: "app",
              address: "127.0.0.1",
              port: pxInPort,
              version: "v1",
            }],
          },
          resources: route,
        },
      }),
    );
    await Deno.writeTextFile(
      `${tmp}/px-in.yaml`,
      JSON.stringify(proxyCfg("px-in", {
        inbound: `127.0.0.1:${pxInPort}`,
        services: [{ name: "app", port: appPort, version: "v1" }],
        ...(mtls ? { token_file: tokenFiles.app } : {}),
      })),
    );
    await Deno.writeTextFile(
      `${tmp}/px-out.yaml`,
      JSON.stringify(proxyCfg("px-out", {
        upstreams: [{ service: "app", listen: `127.0.0.1:${pxOutPort}` }],
        // A join token names a service, so the mTLS caller fronts one too (never called).
        ...(mtls
          ? { token_file: tokenFiles.client, services: [{ name: "client", port: appPort }] }
          : {}),
      })),
    );
    if (second !== null) {
      // The no-mux pair has an inbound proxy of its own (service "app-b", same app): sharing
      // the first pair's inbound would let one target's traffic change the other's figures.
      await Deno.writeTextFile(
        `${tmp}/px-in-b.yaml`,
        JSON.stringify(proxyCfg("px-in-b", {
          inbound: `127.0.0.1:${pxInBPort}`,
          services: [{ name: "app-b", port: appPort }],
          token_file: tokenFiles["app-b"],
        }, observePair)),
      );
      await Deno.writeTextFile(
        `${tmp}/px-out-b.yaml`,
        JSON.stringify(proxyCfg("px-out-b", {
          upstreams: [{ service: "app-b", listen: `127.0.0.1:${pxOutBPort}` }],
          token_file: tokenFiles["client-b"],
          services: [{ name: "client", port: appPort }],
        }, observePair)),
      );
    }
    // SKEIN_BENCH_PROFILE_DIR=dir writes a V8 CPU profile of each skein proxy there on exit.
    const profDir = Deno.env.get("SKEIN_BENCH_PROFILE_DIR");
    const proxyArgs = (cfg: string) => {
      const a = skeinArgs(["proxy", "--config", cfg, "--log-level", "error"]);
      return profDir ? [a[0]!, "--cpu-prof", `--cpu-prof-dir=${profDir}`, ...a.slice(1)] : a;
    };
    // Since zero trust (issue 5) `skein proxy` refuses to start without an identity, so the
    // plaintext mode can only measure the bare forwarder pair.
    let pxIn: Deno.ChildProcess | null = null;
    let pxOut: Deno.ChildProcess | null = null;
    let pxOutB: Deno.ChildProcess | null = null;
    let pxInB: Deno.ChildProcess | null = null;
    if (mtls) {
      pxIn = spawn(Deno.execPath(), proxyArgs(`${tmp}/px-in.yaml`));
      await waitPort(pxInPort, "skein proxy inbound");
      pxOut = spawn(Deno.execPath(), proxyArgs(`${tmp}/px-out.yaml`));
      await waitPort(pxOutPort, "skein proxy outbound");
      if (second !== null) {
        pxInB = spawn(Deno.execPath(), proxyArgs(`${tmp}/px-in-b.yaml`));
        await waitPort(pxInBPort, `skein proxy inbound (${second} pair)`);
        pxOutB = spawn(
          Deno.execPath(),
          proxyArgs(`${tmp}/px-out-b.yaml`),
          second === "nomux" ? { SKEIN_MESH_MUX: "off" } : undefined,
        );
        await waitPort(pxOutBPort, `skein proxy outbound (${second} pair)`);
      }
    } else {
      notes.push("skein proxy needs an identity: plaintext mode measures the bare forwarder");
    }
    if (mtls) {
      await waitMeshRoute(pxOutPort);
      if (pxOutB !== null) await waitMeshRoute(pxOutBPort);
      for (const port of pxInB !== null ? [pxInPort, pxInBPort] : [pxInPort]) {
        if (await answersPlaintext(port)) {
          throw new Error("skein inbound answered plaintext HTTP: the hop is not mTLS");
        }
      }
    }

    const bare = !mtls;
    let skIn: Deno.ChildProcess | null = null;
    let skOut: Deno.ChildProcess | null = null;
    const skInPort = freePort();
    const skOutPort = freePort();
    if (bare) {
      skIn = spawn(Deno.execPath(), [
        "run",
        "-A",
        `${ROOT}apps/forwarder_proc.ts`,
        "--port",
        String(skInPort),
        "--upstream",
        `127.0.0.1:${appPort}`,
        "--node",
        "inbound",
      ]);
      await waitPort(skInPort, "skein inbound");
      skOut = spawn(Deno.execPath(), [
        "run",
        "-A",
        `${ROOT}apps/forwarder_proc.ts`,
        "--port",
        String(skOutPort),
        "--upstream",
        `127.0.0.1:${skInPort}`,
        "--node",
        "outbound",
      ]);
      await waitPort(skOutPort, "skein outbound");
    }

    const targets: Array<{ name: string; port: number; pids: number[] }> = [
      { name: "direct", port: appPort, pids: [] },
    ];
    if (haveHaproxy) {
      const haInPort = freePort();
      const haOutPort = freePort();
      const pki = mtls ? await makeHaproxyPki(tmp) : undefined;
      await Deno.writeTextFile(
        `${tmp}/inbound.cfg`,
        haproxyConfig(haInPort, appPort, pki && { pki, side: "inbound" }),
      );
      await Deno.writeTextFile(
        `${tmp}/outbound.cfg`,
        haproxyConfig(haOutPort, haInPort, pki && { pki, side: "outbound" }),
      );
      const haIn = spawn("haproxy", ["-db", "-f", `${tmp}/inbound.cfg`]);
      await waitPort(haInPort, "haproxy inbound");
      const haOut = spawn("haproxy", ["-db", "-f", `${tmp}/outbound.cfg`]);
      await waitPort(haOutPort, "haproxy outbound");
      if (mtls) {
        await waitMeshRoute(haOutPort);
        if (await answersPlaintext(haInPort)) {
          throw new Error("haproxy inbound answered plaintext HTTP: the hop is not mTLS");
        }
      }
      targets.push({ name: names.haproxy, port: haOutPort, pids: [haIn.pid, haOut.pid] });
    }
    if (pxIn !== null && pxOut !== null) {
      targets.push({ name: names.skein, port: pxOutPort, pids: [pxIn.pid, pxOut.pid] });
    }
    if (pxInB !== null && pxOutB !== null) {
      targets.push({
        name: second === "observe" ? "skein-mtls-observe" : "skein-mtls-nomux",
        port: pxOutBPort,
        pids: [pxInB.pid, pxOutB.pid],
      });
    }
    if (skIn !== null && skOut !== null) {
      targets.push({ name: "skein-fwd-2hop", port: skOutPort, pids: [skIn.pid, skOut.pid] });
    }

    if (opts.hold === true) {
      // Profiling aid: leave the topology up and say where each target listens.
      print(`hold: app pid=${app.pid}`);
      if (controlPid !== null) print(`hold: control pid=${controlPid}`);
      for (const t of targets) print(`hold: ${t.name} port=${t.port} pids=${t.pids.join(",")}`);
      await new Promise(() => {});
    }
    const rounds = Math.max(1, opts.rounds ?? 3);
    const runs = new Map<string, Array<Awaited<ReturnType<typeof wrk>>>>();
    const rssIdle = new Map<string, number>();
    const rssLoad = new Map<string, number>();
    const cpuRuns = new Map<string, number[][]>();
    const sumRss = async (pids: number[]) =>
      (await Promise.all(pids.map(rssKiB))).reduce((a, b) => a + b, 0);
    for (const t of targets) {
      await wrk(t.port, WARMUP_SEC, conns); // JIT, heap, pools, backlog
      rssIdle.set(t.name, await sumRss(t.pids));
      rssLoad.set(t.name, 0);
      runs.set(t.name, []);
      cpuRuns.set(t.name, []);
    }
    for (let round = 1; round <= rounds; round++) {
      for (const t of targets) {
        print(`# round ${round}/${rounds}: ${t.name}, wrk -t1 -c${conns} -d${dur}s`);
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            await new Promise((r) => setTimeout(r, 500));
            rssLoad.set(t.name, Math.max(rssLoad.get(t.name)!, await sumRss(t.pids)));
          }
        })();
        await wrk(t.port, ROUND_WARMUP_SEC, conns);
        const cpu0 = await Promise.all(t.pids.map(cpuMs));
        const w = await wrk(t.port, dur, conns);
        const cpu1 = await Promise.all(t.pids.map(cpuMs));
        const reqs = w.rps * dur;
        cpuRuns.get(t.name)!.push(cpu1.map((c, i) => ((c - cpu0[i]!) * 1000) / reqs));
        runs.get(t.name)!.push(w);
        sampling = false;
        await sampler;
      }
    }
    const results: BenchTarget[] = [];
    for (const t of targets) {
      print(`# ${t.name}: ${rate} req/s for ${rateDur}s`);
      const fr = await fixedRate({ port: t.port, rate, durationSec: rateDur });
      const rs = runs.get(t.name)!;
      const median = [...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)]!;
      results.push({
        name: t.name,
        rps: median.rps,
        rpsRounds: rs.map((r) => r.rps),
        wrkP50Ms: median.p50,
        wrkP99Ms: median.p99,
        fixedP50Ms: fr.p50Ms,
        fixedP99Ms: fr.p99Ms,
        errors: rs.reduce((n, r) => n + r.errors, 0) + fr.errors,
        rssIdleKiB: rssIdle.get(t.name)!,
        rssLoadKiB: rssLoad.get(t.name)!,
        cpuUsPerReq: t.pids.map((_, i) => {
          const v = cpuRuns.get(t.name)!.map((r) => r[i]!).sort((a, b) => a - b);
          return v[Math.floor(v.length / 2)]!;
        }),
      });
    }

    const by = (n: string) => results.find((r) => r.name === n);
    const direct = by("direct")!;
    const skein = by(names.skein)!;
    const ha = by(names.haproxy);
    const observed = by("skein-mtls-observe");
    const addedP50Ms: Record<string, number> = {};
    const addedP99Ms: Record<string, number> = {};
    for (const r of results) {
      if (r.name === "direct") continue;
      addedP50Ms[r.name] = r.fixedP50Ms - direct.fixedP50Ms;
      addedP99Ms[r.name] = r.fixedP99Ms - direct.fixedP99Ms;
    }
    const result: BenchResult = {
      targets: results,
      skeinVsHaproxyRps: ha ? skein.rps / ha.rps : null,
      skeinVsDirectRps: skein.rps / direct.rps,
      observeVsOffRps: observed ? observed.rps / skein.rps : null,
      addedP50Ms,
      addedP99Ms,
      notes,
    };
    print(formatTable(result));
    return result;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    await Promise.all(children.map(async (c) => {
      const t = setTimeout(() => {
        try {
          c.kill("SIGKILL");
        } catch {
          // already gone
        }
      }, 3000);
      await c.status;
      clearTimeout(t);
    }));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Renders a result as a fixed-width table with ratios. */
export function formatTable(r: BenchResult): string {
  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "-");
  const lines = [
    "target          req/s    wrk p50  wrk p99  @rate p50  @rate p99  errors  RSS idle  RSS load",
    "--------------  -------  -------  -------  ---------  ---------  ------  --------  --------",
  ];
  for (const t of r.targets) {
    lines.push(
      [
        t.name.padEnd(14),
        f(t.rps, 0).padStart(7),
        f(t.wrkP50Ms).padStart(7),
        f(t.wrkP99Ms).padStart(7),
        f(t.fixedP50Ms).padStart(9),
        f(t.fixedP99Ms).padStart(9),
        String(t.errors).padStart(6),
        (t.rssIdleKiB ? `${(t.rssIdleKiB / 1024).toFixed(1)}M` : "-").padStart(8),
        (t.rssLoadKiB ? `${(t.rssLoadKiB / 1024).toFixed(1)}M` : "-").padStart(8),
      ].join("  "),
    );
  }
  lines.push(
    "(req/s and wrk latencies: median round; latencies in ms; RSS summed over both proxies,",
  );
  lines.push(" idle = after warm-up, load = peak sampled during wrk)");
  for (const t of r.targets) {
    lines.push(`${t.name} rounds: ${t.rpsRounds.map((x) => f(x, 0)).join(", ")} req/s`);
  }
  for (const t of r.targets) {
    if (t.cpuUsPerReq.length === 0) continue;
    const sum = t.cpuUsPerReq.reduce((a, b) => a + b, 0);
    lines.push(
      `${t.name} CPU per request (inbound, outbound; median round): ` +
        `${t.cpuUsPerReq.map((x) => f(x, 1)).join(" + ")} = ${f(sum, 1)} µs`,
    );
  }
  if (r.skeinVsHaproxyRps !== null) {
    lines.push(`skein / haproxy throughput: ${f(r.skeinVsHaproxyRps)}x`);
  }
  lines.push(`skein / direct throughput:  ${f(r.skeinVsDirectRps)}x`);
  if (r.observeVsOffRps !== null) {
    const by = (n: string) => r.targets.find((t) => t.name === n)!;
    const on = by("skein-mtls-observe"), off = by("skein-mtls");
    const cpu = (t: BenchTarget) => t.cpuUsPerReq.reduce((a, b) => a + b, 0);
    // Each round runs the two pairs one right after the other, so a round's ratio cancels
    // most of the drift of a shared machine that the medians of separate rounds keep.
    const paired = on.rpsRounds.map((v, i) => v / off.rpsRounds[i]!);
    const mid = [...paired].sort((a, b) => a - b)[Math.floor(paired.length / 2)]!;
    lines.push(
      `skein-mtls-observe / skein-mtls throughput: ${f(r.observeVsOffRps)}x of the medians; ` +
        `per round ${paired.map((x) => f(x)).join(", ")}, median ${f(mid)}x ` +
        `(CPU per request ${f(cpu(on), 1)} / ${f(cpu(off), 1)} µs)`,
    );
  }
  for (const [k, v] of Object.entries(r.addedP50Ms)) {
    lines.push(`${k}: added latency at fixed rate p50 ${f(v)} ms, p99 ${f(r.addedP99Ms[k]!)} ms`);
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join("\n");
}

/**
 * `--observe` (both halves), `--observe-log` or `--observe-trace` from the command line, else
 * `SKEIN_BENCH_OBSERVE=both|log|trace` (how `bench/ab_pair.ts` sets it for one side).
 */
export function observeArg(args: readonly string[]): boolean | "log" | "trace" {
  if (args.includes("--observe")) return true;
  if (args.includes("--observe-log")) return "log";
  if (args.includes("--observe-trace")) return "trace";
  const env = Deno.env.get("SKEIN_BENCH_OBSERVE");
  return env === "log" || env === "trace" ? env : env === "both";
}

if (import.meta.main) {
  const arg = (n: string, d: number) => {
    const i = Deno.args.indexOf(`--${n}`);
    return i === -1 ? d : Number(Deno.args[i + 1]);
  };
  await runMeshBench({
    durationSec: arg("duration", 10),
    rate: arg("rate", 1000),
    rounds: arg("rounds", 3),
    workers: Deno.args.includes("--workers") ? arg("workers", 0) || "auto" : "auto",
    bareForwarder: !Deno.args.includes("--no-bare"),
    mtls: Deno.args.includes("--mtls"),
    abOutbound: Deno.args.includes("--ab-outbound"),
    hold: Deno.args.includes("--hold"),
    route: Deno.args.includes("--route"),
    observe: observeArg(Deno.args),
    observePair: Deno.args.includes("--observe-pair"),
  });
}
