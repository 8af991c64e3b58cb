/**
 * `skein demo`: a whole mesh on loopback with no configuration: 3 control nodes, three demo
 * services (frontend -> orders -> inventory) with 2 instances each behind their own proxies,
 * an edge proxy, and a little load generator. Stops cleanly on Ctrl-C: every child gets
 * SIGTERM (proxies first, so they drain and deregister), and the temp dir is removed, except
 * its logs when something failed. Every listener but the Raft ones binds port 0 and its child
 * reports the address, so two listeners never share a port.
 * @module
 */
import type { Logger } from "../common/log.ts";
import { serveDemoService } from "./demo_service.ts";
import { ChildExitedError, DemoChild, logfmtFields } from "./demo_child.ts";
import { type ChildStop, stopProblem } from "./demo_stop.ts";
import { type CommandIo, EXIT } from "./cli/io.ts";
import { selfCommand } from "./self_command.ts";
import { runnableSkein } from "./runnable.ts";
import { createCa, writeSeedCa } from "../control/ca/mod.ts";

/** The chain of demo services: each calls the next. */
export const DEMO_SERVICES = ["frontend", "orders", "inventory"] as const;
/** Instances per demo service. */
export const DEMO_INSTANCES = 2;
/** Control nodes in the demo cluster. */
export const DEMO_CONTROL_NODES = 3;
/** Requests per second of the load generator. */
export const DEMO_LOAD_RPS = 10;
/** How long to wait for the control cluster to elect a leader, in ms. */
export const DEMO_START_TIMEOUT_MS = 60_000;
/** How long a child may take to stop after SIGTERM before it is killed, in ms. */
export const DEMO_STOP_TIMEOUT_MS = 10_000;
/** How often the load generator prints a summary, in ms. */
export const DEMO_REPORT_INTERVAL_MS = 5_000;

/** Options of {@linkcode runDemo}. */
export interface RunDemoOptions {
  dir?: string;
  io: CommandIo;
  log: Logger;
  /** How to run `skein` (tests replace it); default {@linkcode skeinCommand}. */
  skein?: { cmd: string; prefix: string[]; fromSource: boolean };
}

/**
 * Distinct loopback ports for the Raft listeners, which peers must know before any node starts:
 * all are held open together (so none is handed out twice) and released just before the spawn.
 */
function _reservePorts(n: number): { ports: number[]; release(): void } {
  const ls = Array.from({ length: n }, () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  return {
    ports: ls.map((l) => (l.addr as Deno.NetAddr).port),
    release: () => ls.forEach((l) => l.close()),
  };
}

/** How the demo runs `skein` again: the same executable, from source (with the V8 flags) or not. */
export function skeinCommand(): { cmd: string; prefix: string[]; fromSource: boolean } {
  return selfCommand();
}

/** Runs the demo until Ctrl-C; returns the exit code. */
export async function runDemo(opts: RunDemoOptions): Promise<number> {
  const io = opts.io;
  const log = opts.log.with({ component: "demo" });
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "skein-demo-" });
  await Deno.mkdir(`${dir}/logs`, { recursive: true });
  const children: DemoChild[] = [];
  const inProcess: Deno.HttpServer[] = [];
  const stop = Promise.withResolvers<string>();
  let stopping = false;
  // Installed until the very end: a second Ctrl-C (a task runner forwards one) must not kill
  // the demo halfway through its cleanup, leaving the CA key and tokens behind.
  const onSignal = (sig: string) => () => {
    if (stopping) io.stderr(`skein demo: ${sig} again: still stopping\n`);
    stop.resolve(sig);
  };
  const onInt = onSignal("SIGINT");
  const onTerm = onSignal("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  const skein = opts.skein ?? skeinCommand();
  let stopSig: string | null = null;
  const stopReason = stop.promise.then((s) => `stopped by ${(stopSig = s)}`);
  // Rejects as soon as any child exits while the demo is starting, naming it.
  const died = Promise.withResolvers<never>();
  died.promise.catch(() => {});
  let starting = true;
  const watchful = <T>(p: Promise<T>) => Promise.race([p, died.promise]);

  const spawn = async (name: string, cmd: string, args: string[]): Promise<DemoChild> => {
    const c = await DemoChild.spawn(name, cmd, args, `${dir}/logs/${name}.log`);
    children.push(c);
    c.exited.then(async (code) => {
      await c.logged;
      if (starting) died.reject(new ChildExitedError(name, code, c.tail(), c.logFile));
    });
    return c;
  };

  let loadTimer: ReturnType<typeof setInterval> | undefined;
  let clientRef: Deno.HttpClient | undefined;
  let reportTimer: ReturnType<typeof setInterval> | undefined;
  let failed = false;
  try {
    // --- CA seed: what every control node is given, and what proxies trust the API with ---
    const seed = await writeSeedCa(
      `${dir}/ca`,
      await createCa({ trustDomain: "skein.local", now: Date.now() }),
    );
    const caPem = await Deno.readTextFile(seed.certFile);
    const client = Deno.createHttpClient({ caCerts: [caPem] });
    clientRef = client;
    const api = (url: string, init: RequestInit = {}) =>
      fetch(url, { ...init, client, signal: init.signal ?? AbortSignal.timeout(5000) });

    // --- control cluster -----------------------------------------------------------------
    const raft = _reservePorts(DEMO_CONTROL_NODES);
    const cps = raft.ports.map((port, i) => ({ node: `cp-${i + 1}`, raft: port }));
    const peers = cps.map((c) => `${c.node}=127.0.0.1:${c.raft}`);
    for (const c of cps) {
      await Deno.writeTextFile(
        `${dir}/${c.node}.yaml`,
        JSON.stringify({
          node: c.node,
          data_dir: `${dir}/${c.node}`,
          api: "127.0.0.1:0",
          raft: `127.0.0.1:${c.raft}`,
          peers,
          bootstrap_token_file: `${dir}/admin.token`,
          tls: { ca_cert_file: seed.certFile, ca_key_file: seed.keyFile },
          raft_tuning: { heartbeat: "100ms", election_timeout: "1s" },
        }),
      );
    }
    raft.release();
    const cpChildren: DemoChild[] = [];
    for (const c of cps) {
      const path = `${dir}/${c.node}.yaml`;
      cpChildren.push(await spawn(c.node, skein.cmd, [...skein.prefix, "control", "-c", path]));
    }
    io.stderr(`skein demo: starting ${DEMO_CONTROL_NODES} control nodes in ${dir}\n`);
    const controlUrls: string[] = [];
    for (const c of cpChildren) {
      const m = await watchful(c.waitLine(/api listening.*url=(\S+)/, stopReason));
      controlUrls.push(m[1]!);
    }
    if (await watchful(_waitLeader(controlUrls, api, stop.promise)) === null) return EXIT.ok;
    const joinToken = await watchful(_joinTokens(dir, controlUrls[0]!, api, stop.promise));
    if (joinToken === null) return EXIT.ok;

    // --- services, each instance behind its own proxy --------------------------------------
    const admins: { node: string; url: string }[] = [];
    const startProxy = async (node: string, service: string, cfg: Record<string, unknown>) => {
      const path = `${dir}/${node}.yaml`;
      // One single-use join token per proxy: the first start obtains a certificate with it.
      const tokenFile = `${dir}/${node}.join-token`;
      await Deno.writeTextFile(tokenFile, await joinToken(service), { mode: 0o600 });
      await Deno.writeTextFile(
        path,
        JSON.stringify({
          node,
          zone: "demo",
          control: controlUrls,
          ca_file: seed.certFile,
          token_file: tokenFile,
          data_dir: `${dir}/${node}`,
          admin: "127.0.0.1:0",
          inbound: "127.0.0.1:0",
          heartbeat_interval: "1s",
          drain_timeout: "2s",
          ...cfg,
        }),
      );
      const c = await spawn(node, skein.cmd, [...skein.prefix, "proxy", "--config", path]);
      const f = logfmtFields((await watchful(c.waitLine(/^.*proxy listening.*$/, stopReason)))[0]!);
      admins.push({ node, url: `http://${f.admin}` });
      return f;
    };
    const appEntry = new URL("./demo_service.ts", import.meta.url).pathname;
    for (const [si, svc] of DEMO_SERVICES.entries()) {
      const next = DEMO_SERVICES[si + 1];
      for (let i = 1; i <= DEMO_INSTANCES; i++) {
        const node = `${svc}-${i}`;
        // The app binds first; it learns its proxy's upstream listener once that is bound.
        let appPort: number;
        let tellNext: (addr: string) => Promise<void>;
        if (skein.fromSource) {
          const app = await spawn(`${node}-app`, Deno.execPath(), [
            "run",
            "--allow-net",
            "--quiet",
            appEntry,
            svc,
            node,
            "0",
            ...(next ? ["-"] : []),
          ]);
          appPort = Number((await watchful(app.waitLine(/^listening (\d+)/, stopReason)))[1]);
          tellNext = async (addr) => {
            await app.send(addr);
            await app.closeStdin();
          };
        } else {
          // A compiled skein cannot run a script: serve the app from this process instead.
          let nextAddr: string | undefined;
          const server = serveDemoService({
            name: svc,
            instance: node,
            port: 0,
            next: () => nextAddr,
          });
          inProcess.push(server);
          appPort = server.addr.port;
          tellNext = (addr) => Promise.resolve(void (nextAddr = addr));
        }
        const f = await startProxy(node, svc, {
          services: [{ name: svc, port: appPort, health: { http: "/healthz", interval: "1s" } }],
          upstreams: next ? [{ service: next, listen: "127.0.0.1:0" }] : [],
        });
        if (next) await tellNext(_upstreamAddr(f.upstreams, next));
      }
    }
    const edge = await startProxy("edge", "edge", {
      http_proxy: "127.0.0.1:0",
      upstreams: [{ service: "frontend", listen: "127.0.0.1:0" }],
    });
    const edgeUpstream = _upstreamAddr(edge.upstreams, "frontend");
    const edgeHttpProxy = edge.http_proxy!;

    // Load starts once the edge proxy has a catalog, so the first requests do not fail.
    const readyBy = Date.now() + DEMO_START_TIMEOUT_MS;
    const isReady = (url: string) =>
      fetch(`${url}/ready`, { signal: AbortSignal.timeout(1000) }).then(async (r) => {
        await r.body?.cancel();
        return r.ok;
      }).catch(() => false);
    let notReady = admins.map((a) => a.node);
    while (Date.now() < readyBy) {
      const all = await watchful(Promise.all(admins.map((a) => isReady(a.url))));
      notReady = admins.filter((_a, i) => !all[i]).map((a) => a.node);
      if (notReady.length === 0) break;
      await watchful(new Promise((r) => setTimeout(r, 200)));
    }
    starting = false;
    const ctl = runnableSkein(skein, Deno.cwd(), new URL("..", import.meta.url).pathname);
    const dashboard = await _dashboardLink(controlUrls[0]!, dir, api);
    io.stdout(
      [
        "",
        "skein demo is running. Press Ctrl-C to stop.",
        "",
        // The browser must trust the demo CA (or be told to accept its certificate).
        `dashboard: ${dashboard}`,
        `  (CA to trust: ${seed.certFile})`,
        "",
        "control API:",
        ...controlUrls.map((u) => `  ${u}/v1/health   ${u}/metrics`),
        // Only the file's path: the token itself is a secret.
        `  admin token: ${dir}/admin.token, CA: ${seed.certFile}`,
        `  ${ctl} ctl services --control ${
          controlUrls[0]
        } --ca-file ${seed.certFile} --token-file ${dir}/admin.token`,
        `  curl --cacert ${seed.certFile} ${controlUrls[0]}/v1/health`,
        "",
        "proxy admin (/metrics /ready /config /endpoints):",
        ...admins.map((a) => `  ${a.node.padEnd(12)} ${a.url}/metrics`),
        "",
        "through the mesh (edge -> frontend -> orders -> inventory):",
        `  curl http://${edgeUpstream}/`,
        `  curl -H 'Host: frontend' http://${edgeHttpProxy}/`,
        "",
        `working directory: ${dir} (logs in ${dir}/logs)`,
        "",
        // A slow machine can outlast the wait: say so rather than let the first curl fail.
        ...(notReady.length > 0
          ? [`not ready yet after ${DEMO_START_TIMEOUT_MS / 1000} s: ${notReady.join(", ")}`, ""]
          : []),
      ].join("\n"),
    );

    // --- load ------------------------------------------------------------------------------
    let ok = 0;
    let failedReqs = 0;
    loadTimer = setInterval(() => {
      fetch(`http://${edgeUpstream}/`, { signal: AbortSignal.timeout(5000) })
        .then(async (r) => {
          await r.body?.cancel();
          if (r.ok) ok++;
          else failedReqs++;
        })
        .catch(() => failedReqs++);
    }, 1000 / DEMO_LOAD_RPS);
    reportTimer = setInterval(() => {
      io.stdout(`load: ${ok} ok, ${failedReqs} failed\n`);
    }, DEMO_REPORT_INTERVAL_MS);

    const sig = await stop.promise;
    io.stderr(`skein demo: ${sig}: stopping\n`);
    return EXIT.ok;
  } catch (e) {
    starting = false;
    // A Ctrl-C reaches the children too, so one may exit just before the demo hears of it.
    if (stopSig !== null) {
      io.stderr(`skein demo: ${stopSig}: stopping\n`);
      return EXIT.ok;
    }
    failed = true;
    if (e instanceof ChildExitedError) io.stderr(`skein demo: ${e.message}\n`);
    else log.error("demo failed", { err: e as Error });
    return EXIT.failure;
  } finally {
    stopping = true;
    starting = false;
    clearInterval(loadTimer);
    clearInterval(reportTimer);
    // Proxies first (they drain and deregister while the control plane is still up), then
    // apps, then control nodes.
    const order = (c: DemoChild) => c.name.startsWith("cp-") ? 2 : c.name.endsWith("-app") ? 1 : 0;
    const problems: string[] = [];
    for (const rank of [0, 1, 2]) {
      const stops = await Promise.all(
        children.filter((c) => order(c) === rank).map((c) => _stopChild(c)),
      );
      for (const s of stops) {
        const p = stopProblem(s, DEMO_STOP_TIMEOUT_MS);
        if (p !== null) problems.push(p);
      }
    }
    if (problems.length > 0) failed = true;
    await Promise.all(inProcess.map((s) => s.shutdown()));
    clientRef?.close();
    if (ownDir) await _cleanUp(dir, failed);
    for (const p of problems) io.stderr(`skein demo: ${p}\n`);
    if (ownDir && failed) io.stderr(`skein demo: something failed; logs kept in ${dir}/logs\n`);
    io.stderr("skein demo: stopped\n");
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
}

/** The address of `service`'s listener in a proxy's `upstreams=a=h:p,b=h:p` log field. */
function _upstreamAddr(field: string | undefined, service: string): string {
  for (const kv of (field ?? "").split(",")) {
    const [s, addr] = kv.split("=");
    if (s === service && addr) return addr;
  }
  throw new Error(`the proxy did not report a listener for ${service} (upstreams=${field})`);
}

/**
 * Removes the working directory; after a failure, everything but the logs (the CA key, tokens
 * and identities are secrets; the logs are what a user needs to see what went wrong).
 */
async function _cleanUp(dir: string, keepLogs: boolean): Promise<void> {
  if (!keepLogs) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return;
  }
  for await (const e of Deno.readDir(dir)) {
    if (e.name === "logs") continue;
    await Deno.remove(`${dir}/${e.name}`, { recursive: true }).catch(() => {});
  }
}

/** Stops a child (SIGTERM, then SIGKILL after a while); returns how it ended. */
async function _stopChild(c: DemoChild): Promise<ChildStop> {
  try {
    c.proc.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  let killed = false;
  const t = setTimeout(() => {
    try {
      c.proc.kill("SIGKILL");
      killed = true;
    } catch {
      // Already gone.
    }
  }, DEMO_STOP_TIMEOUT_MS);
  const st = await c.proc.status;
  clearTimeout(t);
  await c.closeStdin();
  await c.logged;
  return { name: c.name, code: st.code, signal: st.signal, killed };
}

type _Api = (url: string, init?: RequestInit) => Promise<Response>;

/**
 * Waits until the bootstrap admin token works, then returns a function that creates one join
 * token per call (null when the demo was stopped first).
 */
async function _joinTokens(
  dir: string,
  url: string,
  api: _Api,
  stopped: Promise<string>,
): Promise<((service: string) => Promise<string>) | null> {
  let done = false;
  stopped.then(() => (done = true));
  const end = Date.now() + DEMO_START_TIMEOUT_MS;
  const admin = async () => (await Deno.readTextFile(`${dir}/admin.token`)).trim();
  while (!done && Date.now() < end) {
    try {
      const r = await api(`${url}/v1/operator-tokens`, {
        headers: { authorization: `Bearer ${await admin()}` },
      });
      await r.body?.cancel();
      if (r.ok) break;
    } catch {
      // Not registered yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (done) return null;
  const token = await admin();
  return async (service) => {
    const r = await api(`${url}/v1/tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ service, ttl: "1h" }),
    });
    const body = await r.json() as { token?: string; error?: { message?: string } };
    if (!body.token) {
      throw new Error(`join token for ${service}: ${body.error?.message ?? r.status}`);
    }
    return body.token;
  };
}

async function _waitLeader(
  urls: string[],
  api: _Api,
  stopped: Promise<string>,
): Promise<string | null> {
  let done = false;
  stopped.then(() => (done = true));
  const end = Date.now() + DEMO_START_TIMEOUT_MS;
  while (!done && Date.now() < end) {
    for (const u of urls) {
      try {
        const r = await api(`${u}/v1/health`, { signal: AbortSignal.timeout(1000) });
        const h = await r.json() as { leader?: string | null };
        if (h.leader) return h.leader;
      } catch {
        // Not up yet.
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (done) return null;
  throw new Error(`no control leader elected within ${DEMO_START_TIMEOUT_MS} ms`);
}

/**
 * The dashboard link with a fresh read token in its fragment (the page keeps it in session
 * storage and clears it from the address bar; fragments are never sent to the server).
 */
async function _dashboardLink(url: string, dir: string, api: _Api): Promise<string> {
  try {
    const admin = (await Deno.readTextFile(`${dir}/admin.token`)).trim();
    const r = await api(`${url}/v1/operator-tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ role: "read", name: "demo dashboard", ttl: "24h" }),
    });
    const body = await r.json() as { token?: string };
    if (body.token) return `${url}/ui/#token=${encodeURIComponent(body.token)}`;
  } catch {
    // Fall back to the bare page: it asks for a token.
  }
  return `${url}/ui/`;
}
