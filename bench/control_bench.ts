/**
 * Control-plane benchmark: a 3-node skein control cluster against a 3-member etcd cluster on
 * loopback, under the same load: `writers` concurrent loops writing ~`valueBytes` values for a
 * fixed duration (skein: `PUT` instance registrations with a `meta` of that size; etcd:
 * `POST /v3/kv/put` on its JSON gateway), then a failover: SIGKILL of the leader while writers
 * keep writing to the survivors, measuring the time to the first accepted write.
 *
 * With `--tls`, etcd serves its client and peer ports over TLS and requires client certificates
 * (`--client-cert-auth`, `--peer-client-cert-auth`; a throwaway CA made with openssl), and the
 * writers present one, as skein's proxies do against its HTTPS API. wrk cannot present a client
 * certificate, so etcd's wrk figure comes from a second cluster started for that phase alone:
 * TLS on the client and peer ports, peer certificates still required, client certificates not
 * required, and etcd's own authentication on (a `root` user; every request carries its token),
 * as skein's wrk writes carry an operator bearer token over HTTPS without a client certificate.
 *
 * Run alone:
 * `deno run -A bench/control_bench.ts [--duration 10s] [--writers 32] [--only skein|etcd] [--tls]`.
 * @module
 */
import { ProcessCluster, sleep, waitFor } from "../tests/control_process/cluster.ts";
import { testHttpClient } from "../tests/tls_fixture.ts";

/** Default etcd binary (Debian's `etcd-server`). */
export const ETCD_BIN = "/usr/bin/etcd";
/** Most latency samples kept per run; later samples are dropped (counted, not timed). */
export const MAX_LATENCY_SAMPLES = 4_000_000;
/** Timeout of one write during the throughput phase. */
export const WRITE_TIMEOUT_MS = 10_000;
/** Timeout of one write during failover: short, so writers retry against the survivors. */
export const FAILOVER_WRITE_TIMEOUT_MS = 1_000;
/** Writers used during the failover phase. */
export const FAILOVER_WRITERS = 8;
/** Distinct keys per failover writer. */
export const FAILOVER_KEYS_PER_WRITER = 16;
/** Longest failover measured before giving up. */
export const FAILOVER_LIMIT_MS = 30_000;

/** Options of {@linkcode runControlBench}. */
export interface ControlBenchOptions {
  /** Length of the throughput phase. @default 10000 */
  durationMs?: number;
  /** Concurrent writer loops. @default 32 */
  writers?: number;
  /** Bytes of each written value. @default 100 */
  valueBytes?: number;
  /** Distinct keys per writer (keys are overwritten round-robin). @default 100 */
  keysPerWriter?: number;
  /** Which systems to run. @default ["skein", "etcd"] */
  systems?: ("skein" | "etcd")[];
  /** Measure failover after the throughput phase. @default true */
  failover?: boolean;
  /** Also drive each leader with wrk (C) as a second, cheaper load generator. @default when wrk is installed */
  wrk?: boolean;
  /** Run etcd with TLS and client certificates on its client and peer ports. @default false */
  tls?: boolean;
  /** Progress lines. @default nothing */
  progress?: (line: string) => void;
}

/** What one system achieved. */
export interface SystemResult {
  /** `skein` or `etcd`. */
  system: string;
  /** Accepted writes in the throughput phase. */
  writes: number;
  /** Failed writes in the throughput phase. */
  errors: number;
  /** Length of the throughput phase actually measured. */
  durationMs: number;
  /** Accepted writes per second. */
  writesPerSec: number;
  /** Median write latency. */
  p50Ms: number;
  /** 99th percentile write latency. */
  p99Ms: number;
  /** Time from SIGKILL of the leader to the first accepted write on a survivor, or null. */
  failoverMs: number | null;
}

/** What {@linkcode runControlBench} returns. */
export interface ControlBenchResult {
  /** One result per system run. */
  results: SystemResult[];
  /** A printable table with skein/etcd ratios, followed by notes on how each row was driven. */
  table: string;
  /** The notes printed under the table: what each load generator does against each system. */
  notes: string[];
}

/** How the etcd cluster of a run is set up. */
interface _EtcdSetup {
  /** TLS on the client and peer ports (peer certificates always required then). */
  tls: boolean;
  /** Require client certificates on the client port. */
  clientCertAuth: boolean;
  /** Turn on etcd authentication (a `root` user) and send its token with every write. */
  auth: boolean;
}

/** Password of the `root` user of the wrk-only etcd cluster (throwaway, loopback only). */
const _ETCD_ROOT_PASSWORD = "skein-bench";

/** A system under test: where to write and how to find and kill its leader. */
interface _Target {
  name: string;
  urls: string[];
  write(url: string, key: string, value: string, signal: AbortSignal): Promise<boolean>;
  /** A wrk Lua script issuing the same writes over `keys` distinct keys. */
  wrkScript(value: string, keys: number): string;
  leader(): Promise<number>;
  kill(i: number): Promise<void>;
  stop(): Promise<void>;
  /** Whether clients must present a certificate (then wrk cannot drive it). */
  needsClientCert: boolean;
  /** What a wrk request carries and checks, for the table notes. */
  wrkNote: string;
}

function _hasWrk(): boolean {
  try {
    return new Deno.Command("wrk", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().code !== 127;
  } catch {
    return false;
  }
}

function _percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

const _LUA_COUNTER = `n = 0
done = function(summary, latency, requests)
  io.write(string.format("SKEIN_WRK %d %d %d %d\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

/** A wrk run's figures. */
export interface WrkResult {
  writesPerSec: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Drives the leader with wrk (C, 32 connections) so the load generator is not what limits the
 * figure: the fetch-based writers above cost as much CPU as the systems they measure.
 */
async function _wrkLoad(
  t: _Target,
  url: string,
  connections: number,
  durationMs: number,
  valueBytes: number,
  keys: number,
): Promise<WrkResult> {
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  try {
    await Deno.writeTextFile(script, t.wrkScript("v".repeat(valueBytes), keys));
    const secs = Math.max(1, Math.round(durationMs / 1000));
    const out = await new Deno.Command("wrk", {
      args: ["-t1", `-c${connections}`, `-d${secs}s`, "-s", script, url],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const m = /SKEIN_WRK (\d+) (\d+) (\d+) (\d+)/.exec(text);
    if (!out.success || !m) {
      throw new Error(`wrk failed: ${text}${new TextDecoder().decode(out.stderr)}`);
    }
    const [requests, errors, p50us, p99us] = m.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    return {
      writesPerSec: Math.round((requests - errors) / secs),
      errors,
      p50Ms: p50us / 1000,
      p99Ms: p99us / 1000,
    };
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}

/** Runs `writers` loops for `durationMs`; returns counts and latency percentiles. */
async function _load(
  t: _Target,
  writers: number,
  durationMs: number,
  valueBytes: number,
  keysPerWriter: number,
): Promise<Omit<SystemResult, "failoverMs" | "system">> {
  const value = "v".repeat(valueBytes);
  const lat = new Float64Array(MAX_LATENCY_SAMPLES);
  let n = 0;
  let ok = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  const loop = async (w: number) => {
    const url = t.urls[w % t.urls.length]!;
    for (let k = 0; performance.now() < end; k++) {
      const t0 = performance.now();
      let good = false;
      try {
        good = await t.write(
          url,
          `w${w}-${k % keysPerWriter}`,
          value,
          AbortSignal.timeout(WRITE_TIMEOUT_MS),
        );
      } catch {
        good = false;
      }
      const dt = performance.now() - t0;
      if (good) {
        ok++;
        if (n < lat.length) lat[n++] = dt;
      } else {
        errors++;
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, w) => loop(w)));
  const took = performance.now() - start;
  const sorted = lat.subarray(0, n).sort();
  return {
    writes: ok,
    errors,
    durationMs: Math.round(took),
    writesPerSec: Math.round(ok / (took / 1000)),
    p50Ms: _percentile(sorted, 0.5),
    p99Ms: _percentile(sorted, 0.99),
  };
}

/** Kills the leader and measures until a write to a survivor is accepted. */
async function _failover(t: _Target, valueBytes: number): Promise<number | null> {
  const leader = await t.leader();
  const survivors = t.urls.filter((_, i) => i !== leader);
  const value = "f".repeat(valueBytes);
  let firstOk: number | null = null;
  let stop = false;
  const t0 = performance.now();
  await t.kill(leader);
  const killedAt = performance.now();
  const loop = async (w: number) => {
    const url = survivors[w % survivors.length]!;
    for (let k = 0; !stop && performance.now() - killedAt < FAILOVER_LIMIT_MS; k++) {
      const started = performance.now();
      let good = false;
      try {
        good = await t.write(
          url,
          // Few keys: the failover phase must not need new instances beyond the registry's caps.
          `f${w}-${k % FAILOVER_KEYS_PER_WRITER}`,
          value,
          AbortSignal.timeout(FAILOVER_WRITE_TIMEOUT_MS),
        );
      } catch {
        good = false;
      }
      // Only writes started after the kill count: an earlier one may have been acknowledged by
      // the old leader.
      if (good && started >= killedAt) {
        const at = performance.now() - t0;
        if (firstOk === null || at < firstOk) firstOk = at;
        stop = true;
      }
      if (!good) await sleep(5);
    }
  };
  await Promise.all(Array.from({ length: FAILOVER_WRITERS }, (_, w) => loop(w)));
  return firstOk === null ? null : Math.round(firstOk);
}

// ------------------------------------------------------------------ skein

/** Failed writes by `status error-code`, so a run says why writes failed, not only how many. */
const _failures = new Map<string, number>();

function _countFailure(why: string): void {
  _failures.set(why, (_failures.get(why) ?? 0) + 1);
}

/** The `error.code` of an API error body, or `-`. */
async function _errorCode(res: Response): Promise<string> {
  try {
    const j = await res.json() as { error?: { code?: unknown } };
    return typeof j.error?.code === "string" ? j.error.code : "-";
  } catch {
    return "-";
  }
}

/** The failure counts since the last call, as `why×n` items, and resets them. */
function _takeFailures(): string {
  const s = [..._failures].map(([k, n]) => `${k}×${n}`).join(", ");
  _failures.clear();
  return s;
}

async function _skein(): Promise<_Target> {
  const c = await ProcessCluster.create({ logLevel: "warn" });
  await c.startAll();
  await c.waitLeader(30_000);
  const ids = c.ids();
  const urls = ids.map((id) => c.api(id));
  // Writers authenticate as an operator (registration needs the `operator` role or the
  // service's own mesh certificate); over HTTPS they trust the cluster's CA seed.
  const token = await c.waitAdminToken();
  const httpClient = urls[0]!.startsWith("https:") ? await testHttpClient() : undefined;
  const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
  return {
    name: "skein",
    urls,
    async write(url, key, value, signal) {
      // One service per phase (`w…` writers, `f…` failover), as the wrk phase has its own: a
      // service holds at most MAX_INSTANCES_PER_SERVICE instances, and the phases together
      // would pass it (every later write of a new key then fails with 409 too_many_instances).
      const res = await fetch(`${url}/v1/services/bench-${key[0]}/instances/${key}`, {
        method: "PUT",
        headers,
        body: `{"address":"10.0.0.1","port":8080,"meta":{"v":"${value}"}}`,
        signal,
        client: httpClient,
      });
      const good = res.status === 200 || res.status === 201;
      if (good) await res.body?.cancel();
      else _countFailure(`${res.status} ${await _errorCode(res)}`);
      return good;
    },
    wrkScript(value, keys) {
      const body = JSON.stringify(`{"address":"10.0.0.1","port":8080,"meta":{"v":"${value}"}}`);
      return `${_LUA_COUNTER}
request = function()
  n = n + 1
  return wrk.format("PUT", "/v1/services/bench-k/instances/k" .. (n % ${keys}),
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer ${token}"}, ${body})
end
`;
    },
    async leader() {
      const l = await c.waitLeader(30_000);
      return ids.indexOf(l);
    },
    async kill(i) {
      await c.kill(ids[i]!);
    },
    stop: () => c.destroy(),
    needsClientCert: false,
    wrkNote: "skein wrk: HTTPS (TLS 1.3) to the leader's API without a client certificate; " +
      "every PUT carries an operator bearer token, hashed and looked up per request",
  };
}

// ------------------------------------------------------------------ etcd

function _freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
}

const _b64 = (s: string) => btoa(s);

/** Runs openssl; throws with its output when it fails. */
async function _openssl(cwd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** PEM files of a throwaway CA and one leaf usable as TLS server and client on 127.0.0.1. */
interface _BenchPki {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Lifetime of the bench certificates; they live in a temp dir removed after the run. */
const _BENCH_CERT_DAYS = "2";

/**
 * Makes a P-256 CA and one leaf (SAN 127.0.0.1 and localhost, server and client auth) in `dir`,
 * the same key type and shape as skein's mesh certificates, so both systems pay the same
 * handshake and record costs.
 */
async function _benchPki(dir: string): Promise<_BenchPki> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await _openssl(dir, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    _BENCH_CERT_DAYS,
    "-subj",
    "/CN=skein bench CA",
  ]);
  await _openssl(dir, [
    "req",
    ...ec,
    "-keyout",
    "node.key",
    "-out",
    "node.csr",
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n" +
      "extendedKeyUsage=serverAuth,clientAuth\n" +
      "keyUsage=critical,digitalSignature,keyEncipherment\n",
  );
  await _openssl(dir, [
    "x509",
    "-req",
    "-in",
    "node.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "node.pem",
    "-days",
    _BENCH_CERT_DAYS,
    "-extfile",
    "ext.cnf",
  ]);
  return { caFile: `${dir}/ca.pem`, certFile: `${dir}/node.pem`, keyFile: `${dir}/node.key` };
}

async function _etcd(setup: _EtcdSetup): Promise<_Target> {
  const { tls } = setup;
  const dir = await Deno.makeTempDir({ prefix: "skein-etcd-" });
  const names = ["e1", "e2", "e3"];
  const client = names.map(() => _freePort());
  const peer = names.map(() => _freePort());
  const scheme = tls ? "https" : "http";
  const pki = tls ? await _benchPki(dir) : null;
  const clientCert = pki !== null && setup.clientCertAuth;
  const tlsArgs = pki
    ? [
      "--cert-file",
      pki.certFile,
      "--key-file",
      pki.keyFile,
      ...(clientCert ? ["--trusted-ca-file", pki.caFile, "--client-cert-auth"] : []),
      "--peer-cert-file",
      pki.certFile,
      "--peer-key-file",
      pki.keyFile,
      "--peer-trusted-ca-file",
      pki.caFile,
      "--peer-client-cert-auth",
    ]
    : [];
  // One pooled client for every writer, as a proxy holds one for its control plane.
  const httpClient = pki
    ? Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(pki.caFile)],
      ...(clientCert
        ? { cert: await Deno.readTextFile(pki.certFile), key: await Deno.readTextFile(pki.keyFile) }
        : {}),
    })
    : undefined;
  const cluster = names.map((n, i) => `${n}=${scheme}://127.0.0.1:${peer[i]}`).join(",");
  const procs: (Deno.ChildProcess | null)[] = names.map((n, i) =>
    new Deno.Command(ETCD_BIN, {
      args: [
        "--name",
        n,
        "--data-dir",
        `${dir}/${n}`,
        "--listen-client-urls",
        `${scheme}://127.0.0.1:${client[i]}`,
        "--advertise-client-urls",
        `${scheme}://127.0.0.1:${client[i]}`,
        "--listen-peer-urls",
        `${scheme}://127.0.0.1:${peer[i]}`,
        "--initial-advertise-peer-urls",
        `${scheme}://127.0.0.1:${peer[i]}`,
        ...tlsArgs,
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "skein-bench",
        "--log-level",
        "error",
        "--logger",
        "zap",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  const urls = client.map((p) => `${scheme}://127.0.0.1:${p}`);
  const status = async (url: string) => {
    const res = await fetch(`${url}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(1000),
      client: httpClient,
    });
    return await res.json() as { header?: { member_id?: string }; leader?: string };
  };
  const leader = async () =>
    await waitFor("an etcd leader", 30_000, async () => {
      for (let i = 0; i < urls.length; i++) {
        if (!procs[i]) continue;
        const s = await status(urls[i]!).catch(() => null);
        if (s?.leader && s.header?.member_id === s.leader) return i;
      }
      return undefined;
    });
  const leaderAt = await leader();
  const token = setup.auth ? await _etcdAuth(urls[leaderAt]!, httpClient) : null;
  const headers: Record<string, string> = token ? { authorization: token } : {};
  return {
    name: "etcd",
    urls,
    async write(url, key, value, signal) {
      const res = await fetch(`${url}/v3/kv/put`, {
        method: "POST",
        headers,
        body: `{"key":"${_b64(key)}","value":"${_b64(value)}"}`,
        signal,
        client: httpClient,
      });
      await res.body?.cancel();
      return res.status === 200;
    },
    wrkScript(value, keys) {
      // etcd's JSON gateway wants base64 keys, so the bodies are precomputed here.
      const bodies = Array.from(
        { length: keys },
        (_, k) => JSON.stringify(`{"key":"${_b64(`k${k}`)}","value":"${_b64(value)}"}`),
      );
      const auth = token ? `, ["Authorization"] = ${JSON.stringify(token)}` : "";
      return `${_LUA_COUNTER}
bodies = {${bodies.join(",")}}
request = function()
  n = n + 1
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"${auth}},
    bodies[(n % ${keys}) + 1])
end
`;
    },
    leader,
    async kill(i) {
      const p = procs[i];
      if (!p) return;
      p.kill("SIGKILL");
      await p.status;
      procs[i] = null;
    },
    async stop() {
      for (let i = 0; i < procs.length; i++) {
        const p = procs[i];
        if (!p) continue;
        try {
          p.kill("SIGKILL");
        } catch { /* gone */ }
        await p.status;
      }
      httpClient?.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    needsClientCert: clientCert,
    wrkNote: `etcd wrk: ${
      tls
        ? "HTTPS (TLS 1.3) without a client certificate (client cert auth off for this run)"
        : "HTTP"
    } to the leader's JSON gateway; ${
      token ? "etcd auth on, every put carries the root user's simple token" : "etcd auth off"
    }; peer traffic ${tls ? "mTLS" : "plaintext"}`,
  };
}

/**
 * Turns on etcd authentication with a `root` user and returns that user's token, so the wrk
 * writes are authenticated per request as skein's are (the JSON gateway takes the token in
 * `Authorization`).
 */
async function _etcdAuth(url: string, client: Deno.HttpClient | undefined): Promise<string> {
  const call = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
      client,
    });
    const json = await res.json() as Record<string, unknown>;
    if (res.status !== 200) throw new Error(`etcd ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  await call("/v3/auth/role/add", { name: "root" });
  await call("/v3/auth/user/add", { name: "root", password: _ETCD_ROOT_PASSWORD });
  await call("/v3/auth/user/grant", { user: "root", role: "root" });
  await call("/v3/auth/enable", {});
  const r = await call("/v3/auth/authenticate", { name: "root", password: _ETCD_ROOT_PASSWORD });
  if (typeof r.token !== "string") throw new Error(`etcd authenticate: no token in ${r}`);
  return r.token;
}

// ------------------------------------------------------------------ driver

function _fmt(n: number | null, digits = 1): string {
  return n === null || Number.isNaN(n) ? "-" : n.toFixed(digits);
}

function _table(results: SystemResult[]): string {
  const rows: string[][] = [["system", "writes/s", "p50 ms", "p99 ms", "errors", "failover ms"]];
  for (const r of results) {
    rows.push([
      r.system,
      String(r.writesPerSec),
      _fmt(r.p50Ms, 2),
      _fmt(r.p99Ms, 2),
      String(r.errors),
      _fmt(r.failoverMs, 0),
    ]);
  }
  for (const suffix of ["", " wrk"]) {
    const s = results.find((r) => r.system === `skein${suffix}`);
    const e = results.find((r) => r.system === `etcd${suffix}`);
    if (!s || !e) continue;
    const ratio = (a: number | null, b: number | null) =>
      a === null || b === null || b === 0 ? "-" : (a / b).toFixed(2);
    rows.push([
      `skein/etcd${suffix}`,
      ratio(s.writesPerSec, e.writesPerSec),
      ratio(s.p50Ms, e.p50Ms),
      ratio(s.p99Ms, e.p99Ms),
      "",
      ratio(s.failoverMs, e.failoverMs),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

/** Runs the benchmark for the chosen systems, one after the other, and returns the table. */
export async function runControlBench(opts: ControlBenchOptions = {}): Promise<ControlBenchResult> {
  const durationMs = opts.durationMs ?? 10_000;
  const writers = opts.writers ?? 32;
  const valueBytes = opts.valueBytes ?? 100;
  const keys = opts.keysPerWriter ?? 100;
  const progress = opts.progress ?? (() => {});
  const tls = opts.tls ?? false;
  const useWrk = opts.wrk ?? _hasWrk();
  const results: SystemResult[] = [];
  const notes: string[] = [];
  const wrkRow = (system: string, wrk: WrkResult): SystemResult => ({
    system: `${system} wrk`,
    writes: wrk.writesPerSec * Math.round(durationMs / 1000),
    durationMs,
    failoverMs: null,
    ...wrk,
  });
  const runWrk = async (system: string, t: _Target) => {
    const url = t.urls[await t.leader()]!;
    progress(`${system}: wrk, ${writers} connections to the leader for ${durationMs} ms`);
    const wrk = await _wrkLoad(t, url, writers, durationMs, valueBytes, writers * keys);
    notes.push(t.wrkNote);
    return wrk;
  };
  for (const system of opts.systems ?? ["skein", "etcd"]) {
    progress(`${system}: starting a 3-node cluster`);
    const t = system === "skein"
      ? await _skein()
      : await _etcd({ tls, clientCertAuth: tls, auth: false });
    let wrk: WrkResult | null = null;
    try {
      // A short warm-up so connection set-up and JIT are not in the measurement.
      await _load(t, writers, Math.min(1000, durationMs / 5), valueBytes, keys);
      progress(`${system}: ${writers} writers for ${durationMs} ms`);
      const r = await _load(t, writers, durationMs, valueBytes, keys);
      const failed = () => {
        const why = _takeFailures();
        if (why) progress(`${system}: failed writes by status and error code: ${why}`);
      };
      failed();
      if (useWrk && !t.needsClientCert) wrk = await runWrk(system, t);
      let failoverMs: number | null = null;
      if (opts.failover ?? true) {
        progress(`${system}: killing the leader`);
        failoverMs = await _failover(t, valueBytes);
        failed();
      }
      results.push({ system, ...r, failoverMs });
      progress(`${system}: ${r.writesPerSec} writes/s, failover ${failoverMs} ms`);
    } finally {
      await t.stop();
    }
    if (useWrk && t.needsClientCert) {
      // wrk cannot present a client certificate: a second cluster for the wrk phase alone.
      progress(`${system}: a second cluster without client certificate auth, for wrk`);
      const w = await _etcd({ tls, clientCertAuth: false, auth: true });
      try {
        await _load(w, writers, Math.min(1000, durationMs / 5), valueBytes, keys);
        wrk = await runWrk(system, w);
      } finally {
        await w.stop();
      }
    }
    if (wrk) results.push(wrkRow(system, wrk));
  }
  notes.push(
    `fetch writers: ${writers} in-process fetch loops, ~${valueBytes}-byte values, spread over ` +
      "all nodes (followers forward); skein: HTTPS, no client certificate, operator bearer token" +
      (tls ? "; etcd: HTTPS with a client certificate (client cert auth on)" : "; etcd: HTTP"),
  );
  return { results, table: _table(results) + "\n" + notes.map((n) => `# ${n}`).join("\n"), notes };
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const dur = flag("duration");
  const only = flag("only");
  const r = await runControlBench({
    durationMs: dur ? Number(dur.replace(/s$/, "")) * 1000 : undefined,
    writers: flag("writers") ? Number(flag("writers")) : undefined,
    systems: only ? [only as "skein" | "etcd"] : undefined,
    tls: args.includes("--tls"),
    progress: (l) => console.error(l),
  });
  console.log(r.table);
  if (args.includes("--json")) console.log(JSON.stringify(r.results));
}
