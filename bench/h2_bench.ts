/**
 * HTTP/2 benchmark: h2load (`-c4 -m25`: 100 streams over 4 connections, h2c with prior
 * knowledge) through two hops to an h2c app, the hop between them mutual TLS, for
 * (a) HAProxy: an outbound haproxy (`bind ... proto h2`, `server ... ssl crt ... alpn h2`) to an
 * inbound one (`bind ... ssl crt ... verify required alpn h2`, `server ... proto h2`), and
 * (b) skein: two `skein proxy` processes enrolled with a one-node control plane, the app
 * declared `protocol: http2`. Prints req/s and the proxies' CPU per request (user + system
 * of both proxy processes over the run, from /proc) for each, and the ratio.
 *
 * Both pairs are set up first, warmed, then measured in interleaved rounds (median reported).
 *
 * `deno run -A bench/h2_bench.ts [--duration 10] [--rounds 3] [--workers N]`; `deno task bench h2`.
 * @module
 */
import { createJoinToken } from "../tests/skein_cli.ts";
import { makeHaproxyPki, skeinArgs, startBenchControl } from "./apps/mtls_setup.ts";
import { cpuMs } from "./held_topology.ts";

const ROOT = new URL("./", import.meta.url).pathname;

/** h2load's clients (connections) and streams per connection: 100 streams in flight. */
export const H2LOAD_ARGS = ["-c4", "-m25"];

/** One target's figures. */
export interface H2BenchRow {
  name: string;
  rps: number;
  succeeded: number;
  failed: number;
  /** CPU of the two proxies per succeeded request, µs (of the median round). */
  cpuUsPerRequest: number;
  /** req/s of every round, in run order (`rps` is their median). */
  rpsRounds: number[];
}

function _freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

async function _waitPort(port: number, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${what} did not start listening on ${port}`);
}

/** Runs h2load against `port` for `sec` seconds; its req/s and request counts. */
export async function h2load(port: number, sec: number) {
  const out = await new Deno.Command("h2load", {
    args: [...H2LOAD_ARGS, "-D", String(sec), `http://127.0.0.1:${port}/`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return parseH2load(text);
}

/** The req/s and request counts of h2load's report. */
export function parseH2load(text: string): { rps: number; succeeded: number; failed: number } {
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(text)?.[1] ?? NaN);
  const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/
    .exec(text);
  return { rps, succeeded: Number(m?.[4] ?? 0), failed: Number(m?.[5] ?? 0) };
}

/** HAProxy config of one hop of the h2 path; `tls` puts mutual TLS on the side it names. */
function _haproxyH2Config(
  bind: number,
  to: number,
  pki: { ca: string; server: string; client: string },
  side: "inbound" | "outbound",
): string {
  const verify = ` ca-file ${pki.ca} verify required`;
  const bindLine = side === "inbound"
    ? `  bind 127.0.0.1:${bind} ssl crt ${pki.server}${verify} alpn h2`
    : `  bind 127.0.0.1:${bind} proto h2`;
  const serverLine = side === "outbound"
    ? `  server s1 127.0.0.1:${to} ssl crt ${pki.client}${verify} alpn h2`
    : `  server s1 127.0.0.1:${to} proto h2`;
  return [
    "global",
    "  maxconn 4000",
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    "frontend fe",
    bindLine,
    "  default_backend be",
    "backend be",
    serverLine,
    "",
  ].join("\n");
}

/** Runs the benchmark; prints and returns a row per target. */
export async function runH2Bench(
  opts: { durationSec?: number; workers?: number | "auto"; rounds?: number } = {},
): Promise<H2BenchRow[]> {
  const dur = opts.durationSec ?? 10;
  const children: Deno.ChildProcess[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "skein-h2-bench-" });
  const spawn = (cmd: string, args: string[]) => {
    const c = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
    children.push(c);
    return c;
  };
  const targets: { name: string; port: number; pids: number[] }[] = [];
  try {
    const appPort = _freePort();
    spawn(Deno.execPath(), ["run", "-A", `${ROOT}apps/h2_backend.ts`, "--port", String(appPort)]);
    await _waitPort(appPort, "h2c backend");

    if (await _have("haproxy")) {
      const pki = await makeHaproxyPki(tmp);
      const [inPort, outPort] = [_freePort(), _freePort()];
      await Deno.writeTextFile(`${tmp}/in.cfg`, _haproxyH2Config(inPort, appPort, pki, "inbound"));
      await Deno.writeTextFile(
        `${tmp}/out.cfg`,
        _haproxyH2Config(outPort, inPort, pki, "outbound"),
      );
      const hIn = spawn("haproxy", ["-db", "-f", `${tmp}/in.cfg`]);
      await _waitPort(inPort, "haproxy inbound");
      const hOut = spawn("haproxy", ["-db", "-f", `${tmp}/out.cfg`]);
      await _waitPort(outPort, "haproxy outbound");
      targets.push({ name: "haproxy-h2", port: outPort, pids: [hIn.pid, hOut.pid] });
    } else {
      console.log("haproxy not installed: no peer to compare");
    }

    const cp = await startBenchControl(tmp, _freePort(), spawn);
    for (const svc of ["app", "client"]) {
      await Deno.writeTextFile(`${tmp}/${svc}.token`, await createJoinToken(cp.url, cp.token, svc));
    }
    const [pxInPort, pxOutPort] = [_freePort(), _freePort()];
    const cfg = (node: string, extra: Record<string, unknown>) =>
      JSON.stringify({
        node,
        control: [cp.url],
        ca_file: cp.caFile,
        data_dir: `${tmp}/${node}`,
        admin: "127.0.0.1:0",
        workers: opts.workers ?? "auto",
        log: { level: "error" },
        ...extra,
      });
    await Deno.writeTextFile(
      `${tmp}/px-in.yaml`,
      cfg("px-in", {
        inbound: `127.0.0.1:${pxInPort}`,
        token_file: `${tmp}/app.token`,
        services: [{ name: "app", port: appPort, protocol: "http2" }],
      }),
    );
    await Deno.writeTextFile(
      `${tmp}/px-out.yaml`,
      cfg("px-out", {
        inbound: "127.0.0.1:0",
        token_file: `${tmp}/client.token`,
        services: [{ name: "client", port: appPort }],
        upstreams: [{ service: "app", listen: `127.0.0.1:${pxOutPort}` }],
      }),
    );
    // SKEIN_BENCH_PROFILE_DIR=dir writes a V8 CPU profile of each skein proxy there on exit.
    const profDir = Deno.env.get("SKEIN_BENCH_PROFILE_DIR");
    const proxyArgs = (c: string) => {
      const a = skeinArgs(["proxy", "--config", c]);
      return profDir ? [a[0]!, "--cpu-prof", `--cpu-prof-dir=${profDir}`, ...a.slice(1)] : a;
    };
    const pIn = spawn(Deno.execPath(), proxyArgs(`${tmp}/px-in.yaml`));
    await _waitPort(pxInPort, "skein proxy inbound");
    const pOut = spawn(Deno.execPath(), proxyArgs(`${tmp}/px-out.yaml`));
    await _waitPort(pxOutPort, "skein proxy outbound");
    // The outbound proxy learns the inbound endpoint from the control plane. Waited for over
    // HTTP/1.1, so the caller has loaded no HTTP/2 code when its memory is read first.
    for (let i = 0; i < 400; i++) {
      const ok = await fetch(`http://127.0.0.1:${pxOutPort}/`).then(async (r) => {
        await r.body?.cancel();
        return r.status === 200;
      }, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const rssBefore = await _rssMiB(pOut.pid);
    targets.push({ name: "skein-h2", port: pxOutPort, pids: [pIn.pid, pOut.pid] });
    const rows = await _measure(targets, dur, opts.rounds ?? 3);
    console.log(
      `calling proxy RSS: ${rssBefore.toFixed(0)} MiB after HTTP/1.1 only, ` +
        `${(await _rssMiB(pOut.pid)).toFixed(0)} MiB after the h2 rounds (h2 code loaded)`,
    );
    const ha = rows.find((r) => r.name === "haproxy-h2");
    const sk = rows.find((r) => r.name === "skein-h2");
    if (ha !== undefined && sk !== undefined) {
      const paired = sk.rpsRounds.map((v, i) => v / ha.rpsRounds[i]!);
      console.log(
        `skein / haproxy h2 throughput: ${(sk.rps / ha.rps).toFixed(2)}x of the medians; ` +
          `per round ${paired.map((x) => x.toFixed(2)).join(", ")}`,
      );
    }
    return rows;
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
    await Promise.allSettled(children.map((c) => c.status));
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Seconds of load on each target before its first measured round (V8 tiers skein up). */
const WARMUP_SEC = 5;

/**
 * Warms every target, then runs `rounds` interleaved rounds (a, b, a, b, ...) of `dur` seconds
 * so load from other work on the machine hits both alike; each row holds the median round.
 */
async function _measure(
  targets: { name: string; port: number; pids: number[] }[],
  dur: number,
  rounds: number,
): Promise<H2BenchRow[]> {
  for (const t of targets) await h2load(t.port, Math.min(WARMUP_SEC, dur));
  const runs = new Map(targets.map((t) => [t.name, [] as H2BenchRow[]]));
  for (let round = 0; round < Math.max(1, rounds); round++) {
    for (const t of targets) {
      const before = await Promise.all(t.pids.map(cpuMs));
      const r = await h2load(t.port, dur);
      const after = await Promise.all(t.pids.map(cpuMs));
      const cpu = after.reduce((a, b, i) => a + b - before[i]!, 0);
      runs.get(t.name)!.push({
        name: t.name,
        ...r,
        cpuUsPerRequest: r.succeeded > 0 ? (cpu * 1000) / r.succeeded : NaN,
        rpsRounds: [],
      });
    }
  }
  return targets.map((t) => {
    const rs = runs.get(t.name)!;
    const median = [...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)]!;
    const row = {
      ...median,
      succeeded: rs.reduce((n, r) => n + r.succeeded, 0),
      failed: rs.reduce((n, r) => n + r.failed, 0),
      rpsRounds: rs.map((r) => r.rps),
    };
    console.log(
      `${t.name.padEnd(14)} ${row.rps.toFixed(0).padStart(8)} req/s (median; rounds ${
        row.rpsRounds.map((x) => x.toFixed(0)).join(", ")
      })  ${
        row.cpuUsPerRequest.toFixed(1).padStart(6)
      } µs CPU/req (both proxies, median round)  ${row.succeeded} ok, ${row.failed} failed`,
    );
    return row;
  });
}

/** A process's resident set, MiB (0 when gone). */
async function _rssMiB(pid: number): Promise<number> {
  try {
    const st = await Deno.readTextFile(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

async function _have(bin: string): Promise<boolean> {
  const r = await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`], stdout: "null" })
    .output();
  return r.success;
}

if (import.meta.main) {
  const arg = (k: string) => {
    const i = Deno.args.indexOf(k);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const w = arg("--workers");
  await runH2Bench({
    durationSec: Number(arg("--duration") ?? 10),
    rounds: Number(arg("--rounds") ?? 3),
    workers: w === undefined ? undefined : w === "auto" ? "auto" : Number(w),
  });
}
