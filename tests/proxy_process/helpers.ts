/**
 * Helpers for the proxy process tests: real `skein control` and `skein proxy` child processes,
 * in-process demo apps that count what reaches them, and a few HTTP utilities.
 * @module
 */
import { createJoinToken, spawnSkein } from "../skein_cli.ts";
import { sharedSeed, testFetch } from "../tls_fixture.ts";

const _dec = new TextDecoder();

/** A child process whose stderr lines are collected and can be waited for. */
export class Child {
  readonly proc: Deno.ChildProcess;
  readonly lines: string[] = [];
  #waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  readonly #done: Promise<Deno.CommandStatus>;

  constructor(proc: Deno.ChildProcess) {
    this.proc = proc;
    this.#done = proc.status;
    this.#pump(proc.stderr);
    proc.stdout.cancel().catch(() => {});
  }

  async #pump(s: ReadableStream<Uint8Array>): Promise<void> {
    let buf = "";
    try {
      for await (const chunk of s) {
        buf += _dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          this.lines.push(line);
          this.#waiters = this.#waiters.filter((w) => {
            const m = line.match(w.re);
            if (m) w.resolve(m);
            return !m;
          });
        }
      }
    } catch {
      // The process went away.
    }
  }

  /** Resolves with the first (past or future) stderr line matching `re`. */
  waitLine(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    for (const l of this.lines) {
      const m = l.match(re);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        reject(
          new Error(`no line matching ${re} in ${timeoutMs}ms; got:\n${this.lines.join("\n")}`),
        );
      }, timeoutMs);
      this.#waiters.push({
        re,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  }

  /** Sends `sig` and waits for the exit status. */
  async stop(sig: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.proc.kill(sig);
    } catch {
      // Already gone.
    }
    return await this.#done;
  }

  /** The exit status, when it comes. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#done;
  }
}

/** A running single-node control plane. */
export interface Control {
  child: Child;
  url: string;
  /** The node's bootstrap admin token (from its `bootstrap_token_file`). */
  token: string;
}

/** Bootstrap tokens of the controls {@linkcode startControl} started, by API URL. */
const _tokens = new Map<string, string>();

/** Starts a one-node `skein control` in `dir` and waits until it is the leader. */
export async function startControl(
  dir: string,
  name = "cp-1",
  apiPort = 0,
  tls: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<Control> {
  const cfg = `${dir}/${name}.yaml`;
  const seed = await sharedSeed();
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      node: name,
      data_dir: `${dir}/${name}-data`,
      api: `127.0.0.1:${apiPort}`,
      raft: "127.0.0.1:0",
      bootstrap_token_file: `${dir}/${name}.token`,
      tls: { ca_cert_file: seed.certFile, ca_key_file: seed.keyFile, ...tls },
      raft_tuning: { heartbeat: "50ms", election_timeout: "300ms" },
      ...extra,
    }),
  );
  const child = new Child(spawnSkein(["control", "--config", cfg]));
  const m = await child.waitLine(/api listening.*url=(\S+)/);
  await child.waitLine(/became leader/);
  const url = m[1]!;
  const token = (await Deno.readTextFile(`${dir}/${name}.token`)).trim();
  // The leader registers its bootstrap token through Raft right after its election.
  await waitFor(`${name} to accept its bootstrap token`, async () => {
    const r = await testFetch(`${url}/v1/operator-tokens`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await r.body?.cancel();
    return r.status === 200;
  }, 10_000);
  _tokens.set(url, token);
  return { child, url, token };
}

/** Listener addresses a proxy logged at start. */
export interface ProxyHandle {
  child: Child;
  admin: string;
  inbound: string;
  httpProxy: string | null;
  upstreams: Record<string, string>;
  /** Ingress listener addresses, in `ingress` order. */
  ingress: string[];
}

/**
 * Creates a join token for `service` through the API (faster than a `skein ctl` process) with
 * the admin token of the control that {@linkcode startControl} started at `controlUrl`.
 */
export async function joinToken(controlUrl: string, service: string, uses = 1): Promise<string> {
  const admin = _tokens.get(controlUrl);
  if (!admin) throw new Error(`no admin token known for ${controlUrl}`);
  const r = await testFetch(`${controlUrl}/v1/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ service, ttl: "1h", uses }),
  });
  const body = await r.json();
  if (r.status !== 201) {
    throw new Error(`join token for ${service}: ${r.status} ${JSON.stringify(body)}`);
  }
  return body.token as string;
}

/**
 * Starts `skein proxy` with `config` (written as JSON, which is YAML) and waits for it. Unless
 * the config names a `token_file`, the proxy is enrolled with a fresh join token per distinct
 * local service (or its node name) from the first control URL; `ca_file` defaults to the shared seed.
 * `opts.env` adds environment variables to the proxy process (e.g. `SKEIN_MESH_MUX=off`).
 */
export async function startProxy(
  dir: string,
  config: Record<string, unknown>,
  opts: { env?: Record<string, string> } = {},
): Promise<ProxyHandle> {
  const path = `${dir}/${config.node}.yaml`;
  const seed = await sharedSeed();
  const extra: Record<string, unknown> = { ca_file: seed.certFile };
  const dataDir = String(config.data_dir ?? `${dir}/${config.node}-data`);
  const enrolled = await Deno.stat(`${dataDir}/identity.json`).then(() => true, () => false);
  if (config.token_file === undefined && !enrolled) {
    // One token per distinct local service (a proxy holds one identity per service).
    const services = (config.services ?? []) as { name: string }[];
    const names = [...new Set(services.map((s) => s.name))];
    if (names.length === 0) names.push(String(config.node));
    const controls = (config.control ?? []) as string[];
    const url = controls.find((u) => _tokens.has(u));
    if (url) {
      const file = `${dir}/${config.node}.join-token`;
      const tokens = await Promise.all(names.map((n) => joinToken(url, n)));
      await Deno.writeTextFile(file, tokens.join("\n") + "\n");
      extra.token_file = file;
    }
  }
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      ...extra,
      data_dir: `${dir}/${config.node}-data`,
      admin: "127.0.0.1:0",
      inbound: "127.0.0.1:0",
      heartbeat_interval: "200ms",
      drain_timeout: "5s",
      // More than one data-plane worker, so every test covers the multi-threaded path.
      workers: 2,
      ...config,
    }),
  );
  const child = new Child(spawnSkein(["proxy", "--config", path], { env: opts.env }));
  const m = await child.waitLine(/proxy listening"? (.*)$/);
  const f = Object.fromEntries(
    [...m[1]!.matchAll(/(\w+)=("[^"]*"|\S*)/g)].map((x) => [x[1]!, x[2]!.replace(/^"|"$/g, "")]),
  );
  const upstreams: Record<string, string> = {};
  for (const kv of (f.upstreams ?? "").split(",").filter(Boolean)) {
    const [s, a] = kv.split("=");
    upstreams[s!] = a!;
  }
  return {
    child,
    admin: f.admin!,
    inbound: f.inbound!,
    httpProxy: f.http_proxy && f.http_proxy !== "null" ? f.http_proxy : null,
    upstreams,
    ingress: (f.ingress ?? "").split(",").filter(Boolean),
  };
}

/** An in-process HTTP app that counts the requests reaching it. */
export interface App {
  port: number;
  hits: number;
  /** Status answered on `/`; change it to make the app fail. */
  status: number;
  /** Delay before answering `/`, in ms. */
  delayMs: number;
  close(): Promise<void>;
}

/** Starts an app on 127.0.0.1 answering `<name>` on `/` and 200 on `/healthz`. */
export function startApp(name: string, port = 0): App {
  const app: App = {
    port: 0,
    hits: 0,
    status: 200,
    delayMs: 0,
    close: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return new Response("ok");
    app.hits++;
    if (app.delayMs > 0) await new Promise((r) => setTimeout(r, app.delayMs));
    return new Response(name, { status: app.status, headers: { "x-app": name } });
  });
  app.port = server.addr.port;
  return app;
}

/** Polls `fn` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T> | T,
  timeoutMs = 20_000,
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** GETs `http://addr/path` with an optional Host; returns status, body and headers. */
export async function get(
  addr: string,
  path = "/",
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(`http://${addr}${path}`, { headers });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/** Fetches a proxy's admin page as JSON. */
export async function adminJson(h: ProxyHandle, page: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://${h.admin}${page}`);
  return await res.json();
}

/** Fetches the proxy's `/metrics` text. */
export async function metricsText(h: ProxyHandle): Promise<string> {
  const res = await fetch(`http://${h.admin}/metrics`);
  return await res.text();
}

/** Applies resources to the control plane. */
export async function applyResources(controlUrl: string, resources: unknown[]): Promise<void> {
  const token = _tokens.get(controlUrl);
  const res = await testFetch(`${controlUrl}/v1/resources`, {
    method: "PUT",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(resources),
  });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`apply failed: ${res.status} ${body}`);
}

/** Instances of a service in the catalog. */
export async function catalogInstances(
  controlUrl: string,
  service: string,
): Promise<{ id: string; health: string; port: number }[]> {
  const res = await testFetch(`${controlUrl}/v1/services/${service}`, {
    headers: { authorization: `Bearer ${_tokens.get(controlUrl) ?? ""}` },
  });
  const body = await res.json();
  return body.instances ?? [];
}

/**
 * Sends one `GET` with an exact `Host` over a raw connection (fetch cannot set Host) and reads
 * the answer until the server closes.
 */
export async function rawGet(
  addr: string,
  host: string,
  path = "/",
): Promise<{ status: number; body: string; headers: Map<string, string> }> {
  const [hostname, port] = [
    addr.slice(0, addr.lastIndexOf(":")),
    addr.slice(addr.lastIndexOf(":") + 1),
  ];
  const c = await Deno.connect({ hostname, port: Number(port) });
  try {
    await c.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16 * 1024);
    while (true) {
      const n = await c.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = _dec.decode(
      chunks.reduce((a, b) => {
        const o = new Uint8Array(a.length + b.length);
        o.set(a);
        o.set(b, a.length);
        return o;
      }, new Uint8Array(0)),
    );
    const split = text.indexOf("\r\n\r\n");
    const lines = text.slice(0, split).split("\r\n");
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
    }
    return { status: Number(lines[0]!.split(" ")[1]), body: text.slice(split + 4), headers };
  } finally {
    try {
      c.close();
    } catch {
      // Closed by the server.
    }
  }
}

/**
 * A `ledger` callee in front of `ledgerPort` and a `billing` caller in front of `billingPort`
 * with an upstream to ledger (`protocol`, default http), each enrolled with its own join-token
 * file and one worker; started in that order and pushed onto `proxies`.
 */
export async function ledgerAndBilling(
  dir: string,
  cp: Control,
  ports: { ledger: number; billing: number },
  proxies: ProxyHandle[],
  protocol: "http" | "tcp" = "http",
): Promise<{ callee: ProxyHandle; caller: ProxyHandle }> {
  for (const s of ["ledger", "billing"]) {
    await Deno.writeTextFile(`${dir}/${s}.token`, await createJoinToken(cp.url, cp.token, s));
  }
  const callee = await startProxy(dir, {
    node: "vm-ledger",
    control: [cp.url],
    token_file: `${dir}/ledger.token`,
    workers: 1,
    services: [{ name: "ledger", port: ports.ledger }],
  });
  proxies.push(callee);
  const caller = await startProxy(dir, {
    node: "vm-billing",
    control: [cp.url],
    token_file: `${dir}/billing.token`,
    workers: 1,
    services: [{ name: "billing", port: ports.billing }],
    upstreams: [{
      service: "ledger",
      listen: "127.0.0.1:0",
      ...(protocol === "tcp" ? { protocol } : {}),
    }],
  });
  proxies.push(caller);
  return { callee, caller };
}

/** Revokes `service`'s identity through the control API (as admin); throws unless 200. */
export async function revokeService(cp: Control, service: string): Promise<void> {
  const r = await testFetch(`${cp.url}/v1/ca/revoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${cp.token}`, "content-type": "application/json" },
    body: JSON.stringify({ service }),
  });
  if (r.status !== 200) throw new Error(`revoking ${service} got ${r.status}: ${await r.text()}`);
}

/**
 * One proxy per app in `apps`, each fronting it as an instance of `service` (nodes vm-1, vm-2,
 * ...), then a caller proxy (vm-caller) with an upstream to `service`. Every proxy started is
 * pushed onto `proxies` at once, so the caller's cleanup stops them even when a later start fails.
 * With `versioned`, instance i is version `v<i+1>`.
 */
export async function startInstancesAndCaller(
  dir: string,
  controlUrl: string,
  service: string,
  apps: readonly { port: number }[],
  proxies: ProxyHandle[],
  versioned = false,
): Promise<ProxyHandle> {
  for (const [i, a] of apps.entries()) {
    proxies.push(
      await startProxy(dir, {
        node: `vm-${i + 1}`,
        control: [controlUrl],
        services: [{ name: service, port: a.port, ...(versioned ? { version: `v${i + 1}` } : {}) }],
      }),
    );
  }
  const caller = await startProxy(dir, {
    node: "vm-caller",
    control: [controlUrl],
    upstreams: [{ service, listen: "127.0.0.1:0" }],
  });
  proxies.push(caller);
  return caller;
}

/** Waits until the proxy's `/endpoints` shows `n` eligible endpoints of outbound `service`. */
export async function waitEligible(h: ProxyHandle, service: string, n: number): Promise<void> {
  await waitFor(`${n} eligible endpoint(s) of ${service}`, async () => {
    const e = await adminJson(h, "/endpoints") as {
      outbound: { service: string; eligible: number }[];
    };
    return e.outbound.find((d) => d.service === service)?.eligible === n;
  });
}
