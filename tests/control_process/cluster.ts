/**
 * A cluster of real `skein control` processes on loopback for process-level tests and the
 * benchmark: free ports, temp data dirs, start/kill/stop/resume of single nodes, and small
 * HTTP helpers. Children are always killed by {@linkcode ProcessCluster.destroy}.
 * @module
 */
import { SKEIN_ENTRY } from "../skein_cli.ts";
import { sharedSeed, testFetch } from "../tls_fixture.ts";

/** How many bytes of a child's stderr are kept for failure messages. */
export const STDERR_KEEP_BYTES = 64 * 1024;
/** Timeout of one helper HTTP request. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** How often wait loops poll. */
export const POLL_MS = 50;

/** Ports this module handed out: the kernel may offer a released port again at once. */
const _handedOut = new Set<number>();

/**
 * Returns a TCP port that was free a moment ago on 127.0.0.1 and that this module has not
 * handed out before: a cluster takes several ports before any node binds them, and two of them
 * coming out equal made a node fail with EADDRINUSE.
 */
export function freePort(): number {
  for (let i = 0;; i++) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    if (!_handedOut.has(port) || i >= 100) {
      _handedOut.add(port);
      return port;
    }
  }
}

/** One node's fixed identity: id, ports and data directory. */
export interface NodeSpec {
  /** Node id, e.g. `cp-1`. */
  id: string;
  /** API port on 127.0.0.1. */
  apiPort: number;
  /** Raft port on 127.0.0.1. */
  raftPort: number;
  /** Data directory. */
  dataDir: string;
  /** Path of the node's control.yaml. */
  configPath: string;
  /** Whether the node joins a running cluster. */
  join: boolean;
}

/** A node process and what it printed. */
export interface NodeProcess {
  /** The node's spec. */
  spec: NodeSpec;
  /** The child process, or null when not running. */
  child: Deno.ChildProcess | null;
  /** Resolves with the exit status once the child ends. */
  exited: Promise<Deno.CommandStatus> | null;
  /** The tail of its stderr (all runs of this node). */
  stderr: string;
}

/** Options of {@linkcode ProcessCluster.create}. */
export interface ClusterOptions {
  /** Number of founding nodes. @default 3 */
  size?: number;
  /** `raft_tuning.snapshot_every`. @default 10000 */
  snapshotEvery?: number;
  /** `raft_tuning.heartbeat` in ms. @default 100 */
  heartbeatMs?: number;
  /** `raft_tuning.election_timeout` in ms. @default 1000 */
  electionTimeoutMs?: number;
  /** `limits.request_timeout` (write/read commit timeout) in ms. @default 5000 */
  requestTimeoutMs?: number;
  /** Log level of the children. @default "info" */
  logLevel?: string;
  /** Where data dirs live. @default a fresh temp dir */
  baseDir?: string;
  /** Extra `deno run` flags for the children; `{id}` becomes the node id. @default [] */
  denoFlags?: string[];
  /**
   * Give every node its own `bootstrap_token_file` (`<baseDir>/<id>/admin.token`) instead of
   * one shared `<baseDir>/admin.token`. @default false
   */
  separateTokenFiles?: boolean;
  /**
   * The `tls:` block of every node's control.yaml (flow-style YAML). @default the shared test
   * seed's ca_cert_file and ca_key_file
   */
  tls?: string;
  /** The address a node listens on and advertises. @default 127.0.0.1 for every node */
  hostOf?: (id: string) => string;
  /**
   * A command prefix that runs a node (say `ip netns exec <ns>`, to put it on its own host).
   * @default none
   */
  launcher?: (id: string) => string[];
}

/** What `GET /v1/health` returns. */
export interface Health {
  node: string;
  role: string;
  leader: string | null;
  term: number;
  commit_index: number;
  applied_index: number;
}

/** A response of a helper request: status and parsed JSON (or null). */
export interface JsonResponse {
  status: number;
  json: Record<string, unknown> | null;
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a non-undefined value or `timeoutMs` passes (then throws). */
export async function waitFor<T>(
  what: string | (() => string),
  timeoutMs: number,
  fn: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(POLL_MS);
  }
  const name = typeof what === "string" ? what : what();
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${name}${last ? `: ${last}` : ""}`);
}

/**
 * The admin token of the cluster created last (written into its shared `bootstrap_token_file`
 * before the nodes start); {@linkcode request} sends it unless told otherwise. Undefined for
 * clusters with separate token files, whose tests handle tokens themselves.
 */
let _defaultToken: string | undefined;

/**
 * Sends one JSON request (with `token`, else the cluster's admin token, as a bearer token);
 * network errors come back as status 0.
 */
export async function request(
  url: string,
  method = "GET",
  body?: unknown,
  timeoutMs = REQUEST_TIMEOUT_MS,
  token?: string,
): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const bearer = token ?? _defaultToken;
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
  try {
    const res = await testFetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, json };
  } catch {
    return { status: 0, json: null };
  }
}

/** A cluster of `skein control` processes on 127.0.0.1. */
export class ProcessCluster {
  readonly baseDir: string;
  readonly nodes = new Map<string, NodeProcess>();
  readonly #opts: Required<Omit<ClusterOptions, "baseDir" | "hostOf" | "launcher" | "tls">>;
  readonly #tls: string | undefined;
  readonly #hostOf: (id: string) => string;
  readonly #launcher: (id: string) => string[];
  readonly #ownsDir: boolean;

  private constructor(baseDir: string, ownsDir: boolean, opts: ClusterOptions) {
    this.baseDir = baseDir;
    this.#ownsDir = ownsDir;
    this.#opts = {
      size: opts.size ?? 3,
      snapshotEvery: opts.snapshotEvery ?? 10_000,
      heartbeatMs: opts.heartbeatMs ?? 100,
      electionTimeoutMs: opts.electionTimeoutMs ?? 1000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 5000,
      logLevel: opts.logLevel ?? "info",
      denoFlags: opts.denoFlags ?? [],
      separateTokenFiles: opts.separateTokenFiles ?? false,
    };
    this.#tls = opts.tls;
    this.#hostOf = opts.hostOf ?? (() => "127.0.0.1");
    this.#launcher = opts.launcher ?? (() => []);
  }

  /** Allocates ports and writes configs for the founding nodes (does not start them). */
  static async create(opts: ClusterOptions = {}): Promise<ProcessCluster> {
    const own = opts.baseDir === undefined;
    const dir = opts.baseDir ?? await Deno.makeTempDir({ prefix: "skein-cp-" });
    const c = new ProcessCluster(dir, own, opts);
    const specs: NodeSpec[] = [];
    for (let i = 1; i <= c.#opts.size; i++) specs.push(c.#spec(`cp-${i}`, false));
    for (const s of specs) {
      c.nodes.set(s.id, { spec: s, child: null, exited: null, stderr: "" });
    }
    await c.#writeConfigs();
    _defaultToken = undefined;
    if (!c.#opts.separateTokenFiles) {
      // Known up front, so every helper call is authorized as soon as the token is registered.
      const bytes = crypto.getRandomValues(new Uint8Array(24));
      const token = `skn_op_test_${
        Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
      }`;
      await Deno.writeTextFile(c.tokenFile("cp-1"), token + "\n", { mode: 0o600 });
      _defaultToken = token;
    }
    return c;
  }

  #spec(id: string, join: boolean): NodeSpec {
    return {
      id,
      apiPort: freePort(),
      raftPort: freePort(),
      dataDir: `${this.baseDir}/${id}/data`,
      configPath: `${this.baseDir}/${id}/control.yaml`,
      join,
    };
  }

  async #writeConfigs(): Promise<void> {
    const founders = [...this.nodes.values()].filter((n) => !n.spec.join);
    const seed = await sharedSeed();
    for (const n of this.nodes.values()) {
      const s = n.spec;
      // A joiner lists the founders too, so it can answer the leader before the snapshot lands.
      const peers = [...founders.map((f) => f.spec), ...(s.join ? [s] : [])]
        .map((p) => `  - ${p.id}=${this.#hostOf(p.id)}:${p.raftPort}`).join("\n");
      const host = this.#hostOf(s.id);
      const yaml = [
        `node: ${s.id}`,
        `data_dir: ${s.dataDir}`,
        `api: ${host}:${s.apiPort}`,
        `raft: ${host}:${s.raftPort}`,
        `advertise: ${host}`,
        `peers:`,
        peers,
        `join: ${s.join}`,
        `bootstrap_token_file: ${this.tokenFile(s.id)}`,
        `tls: ${this.#tls ?? `{ ca_cert_file: ${seed.certFile}, ca_key_file: ${seed.keyFile} }`}`,
        `raft_tuning: { heartbeat: ${this.#opts.heartbeatMs}ms, election_timeout: ${this.#opts.electionTimeoutMs}ms, snapshot_every: ${this.#opts.snapshotEvery} }`,
        `limits: { request_timeout: ${this.#opts.requestTimeoutMs}ms }`,
        `log: { level: ${this.#opts.logLevel} }`,
        ``,
      ].join("\n");
      await Deno.mkdir(`${this.baseDir}/${s.id}`, { recursive: true });
      await Deno.writeTextFile(s.configPath, yaml);
    }
  }

  /** Path of a node's `bootstrap_token_file`. */
  tokenFile(id: string): string {
    return this.#opts.separateTokenFiles
      ? `${this.baseDir}/${id}/admin.token`
      : `${this.baseDir}/admin.token`;
  }

  /** The bootstrap admin token a node wrote at its first start (default: the first node's). */
  async adminToken(id = this.ids()[0]!): Promise<string> {
    return (await Deno.readTextFile(this.tokenFile(id))).trim();
  }

  /**
   * Waits until node `via` accepts node `id`'s bootstrap token (the node registers it through
   * Raft once a leader is known) and returns the token.
   */
  async waitAdminToken(
    id = this.ids()[0]!,
    via = id,
    timeoutMs = 20_000,
  ): Promise<string> {
    const token = await waitFor(`${id}'s bootstrap token file`, timeoutMs, async () => {
      const t = await this.adminToken(id).catch(() => "");
      return t.length >= 16 ? t : undefined;
    });
    await waitFor(`${via} to accept ${id}'s bootstrap token`, timeoutMs, async () => {
      const r = await request(
        `${this.api(via)}/v1/operator-tokens?stale=true`,
        "GET",
        undefined,
        1000,
        token,
      );
      return r.status === 200 ? true : undefined;
    });
    return token;
  }

  /** Adds a node spec that will start with `join: true` (not started). */
  async addJoiner(id: string): Promise<NodeSpec> {
    const s = this.#spec(id, true);
    this.nodes.set(id, { spec: s, child: null, exited: null, stderr: "" });
    await this.#writeConfigs();
    return s;
  }

  /** The node's record; throws for unknown ids. */
  node(id: string): NodeProcess {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id} in the cluster`);
    return n;
  }

  /** The API base URL of a node. */
  api(id: string): string {
    return `https://${this.#hostOf(id)}:${this.node(id).spec.apiPort}`;
  }

  /** Ids of the nodes. */
  ids(): string[] {
    return [...this.nodes.keys()];
  }

  /** Ids of nodes with a running process. */
  running(): string[] {
    return [...this.nodes.values()].filter((n) => n.child).map((n) => n.spec.id);
  }

  /** Starts every node that is not running, in parallel. */
  async startAll(): Promise<void> {
    await Promise.all(this.ids().filter((id) => !this.node(id).child).map((id) => this.start(id)));
  }

  /** Starts a node's process and waits until its API answers `/v1/health`. */
  async start(id: string, waitHealthy = true): Promise<void> {
    const n = this.node(id);
    if (n.child) throw new Error(`${id} is already running`);
    const [cmd, ...prefix] = [...this.#launcher(id), Deno.execPath()];
    const child = new Deno.Command(cmd!, {
      args: [
        ...prefix,
        "run",
        "--allow-all",
        "--quiet",
        ...this.#opts.denoFlags.map((f) => f.replaceAll("{id}", id)),
        SKEIN_ENTRY,
        "control",
        "--config",
        n.spec.configPath,
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    n.child = child;
    // Drained continuously so a chatty child never blocks on a full pipe.
    const drained = (async () => {
      const dec = new TextDecoder();
      // The whole log also goes to a file beside the config, kept with SKEIN_TEST_KEEP=1.
      const file = await Deno.open(`${this.baseDir}/${id}/stderr.log`, {
        append: true,
        create: true,
      });
      for await (const chunk of child.stderr) {
        await file.write(chunk);
        n.stderr += dec.decode(chunk, { stream: true });
        if (n.stderr.length > STDERR_KEEP_BYTES) n.stderr = n.stderr.slice(-STDERR_KEEP_BYTES);
      }
      file.close();
    })().catch(() => {});
    n.exited = child.status.then(async (s) => {
      await drained;
      if (n.child === child) n.child = null;
      return s;
    });
    if (waitHealthy) {
      await waitFor(`${id} to serve /v1/health`, 30_000, async () => {
        if (!n.child) throw new Error(`${id} exited during start-up:\n${n.stderr}`);
        const r = await request(`${this.api(id)}/v1/health`, "GET", undefined, 1000);
        return r.status === 200 ? true : undefined;
      });
    }
  }

  /** Sends `signal` to a node and, for terminating signals, waits for its exit status. */
  async signal(id: string, signal: Deno.Signal): Promise<Deno.CommandStatus | null> {
    const n = this.node(id);
    const child = n.child;
    if (!child) return null;
    child.kill(signal);
    if (signal === "SIGSTOP" || signal === "SIGCONT") return null;
    return await n.exited!;
  }

  /** SIGKILLs a node and waits for it to be gone. */
  kill(id: string): Promise<Deno.CommandStatus | null> {
    return this.signal(id, "SIGKILL");
  }

  /** `GET /v1/health` of one node, or null when it does not answer. */
  async health(id: string, timeoutMs = 1000): Promise<Health | null> {
    const r = await request(`${this.api(id)}/v1/health`, "GET", undefined, timeoutMs);
    return r.status === 200 ? (r.json as unknown as Health) : null;
  }

  /** Waits until the given nodes (default: running ones) agree on one leader; returns its id. */
  async waitLeader(timeoutMs = 20_000, among = this.running()): Promise<string> {
    return await waitFor(`a leader among ${among.join(",")}`, timeoutMs, async () => {
      const hs = await Promise.all(among.map((id) => this.health(id)));
      const leaders = hs.filter((h) => h?.role === "leader");
      if (leaders.length !== 1) return undefined;
      const l = leaders[0]!;
      // Every node must acknowledge the same leader, so forwarding works from all of them.
      if (!hs.every((h) => h && h.leader === l.node)) return undefined;
      // ...and every node must know the admin token the helpers send: a node checks tokens
      // against its own applied copy, so a follower that has not applied the bootstrap token
      // yet would refuse the helpers' first writes through it.
      if (_defaultToken !== undefined) {
        const rs = await Promise.all(
          among.map((id) =>
            request(`${this.api(id)}/v1/operator-tokens?stale=true`, "GET", undefined, 1000)
          ),
        );
        if (rs.some((r) => r.status !== 200)) return undefined;
      }
      return l.node;
    });
  }

  /** Waits until the given nodes have the same applied index, at least `min`. */
  async waitConverged(timeoutMs = 20_000, among = this.running(), min = 0): Promise<number> {
    let seen = "";
    return await waitFor(
      () => `nodes ${among.join(",")} to converge (${seen})`,
      timeoutMs,
      async () => {
        const hs = await Promise.all(among.map((id) => this.health(id)));
        seen = JSON.stringify(hs);
        if (hs.some((h) => !h)) return undefined;
        const a = hs.map((h) => h!.applied_index);
        const c = hs.map((h) => h!.commit_index);
        const same = a.every((x) => x === a[0]) && c.every((x) => x === a[0]);
        return same && a[0]! >= min ? a[0]! : undefined;
      },
    );
  }

  /** Registers `service/id` through node `via`. */
  register(
    via: string,
    service: string,
    id: string,
    meta: Record<string, string> = {},
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<JsonResponse> {
    return request(
      `${this.api(via)}/v1/services/${service}/instances/${id}`,
      "PUT",
      { address: "10.1.0.1", port: 8080, meta },
      timeoutMs,
    );
  }

  /** Instance ids of `service` on node `id`, read with `?stale=true` (local state). */
  async staleInstances(id: string, service: string): Promise<Set<string> | null> {
    const r = await request(`${this.api(id)}/v1/services/${service}?stale=true`);
    if (r.status !== 200 || !r.json) return null;
    const list = r.json.instances as { id: string }[];
    return new Set(list.map((i) => i.id));
  }

  /** Kills every child and, when it created it, removes the base directory. */
  async destroy(): Promise<void> {
    for (const n of this.nodes.values()) {
      const child = n.child;
      if (!child) continue;
      try {
        child.kill("SIGCONT");
      } catch { /* already gone */ }
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await n.exited?.catch(() => {});
    }
    if (Deno.env.get("SKEIN_TEST_KEEP") === "1") {
      console.error(`keeping ${this.baseDir}`);
      return;
    }
    if (this.#ownsDir) await Deno.remove(this.baseDir, { recursive: true }).catch(() => {});
  }

  /** Every node's stderr tail, for a failure message. */
  logs(): string {
    return [...this.nodes.values()].map((n) => `--- ${n.spec.id}\n${n.stderr.slice(-4000)}`)
      .join("\n");
  }
}

/** Outcome of a {@linkcode WriteStream}: which writes were acknowledged and which were not. */
export interface WriteLog {
  /** Instance ids whose PUT got 200/201. */
  acked: Set<string>;
  /** Instance ids whose PUT failed or timed out: each may or may not have been applied. */
  uncertain: Set<string>;
  /** Status codes seen, by code (0 = network error). */
  statuses: Map<number, number>;
}

/**
 * Concurrent writers, each registering fresh instance ids of `service` through its own node
 * until stopped. A writer whose node is down keeps trying (its failures are `uncertain`).
 */
export class WriteStream {
  readonly log: WriteLog = { acked: new Set(), uncertain: new Set(), statuses: new Map() };
  #stop = false;
  readonly #loops: Promise<void>[] = [];

  /** Starts `perNode` writers against each of `via`. */
  constructor(cluster: ProcessCluster, service: string, via: string[], perNode = 2) {
    let w = 0;
    for (const id of via) {
      for (let k = 0; k < perNode; k++) {
        const writer = `w${w++}`;
        this.#loops.push(this.#loop(cluster, service, id, writer));
      }
    }
  }

  async #loop(c: ProcessCluster, service: string, via: string, writer: string): Promise<void> {
    for (let seq = 0; !this.#stop; seq++) {
      const id = `${writer}-${seq}`;
      const r = await c.register(via, service, id, { writer }, 12_000);
      this.log.statuses.set(r.status, (this.log.statuses.get(r.status) ?? 0) + 1);
      if (r.status === 200 || r.status === 201) this.log.acked.add(id);
      else {
        this.log.uncertain.add(id);
        // A dead node refuses at once; do not spin.
        await sleep(r.status === 0 ? 100 : 20);
      }
    }
  }

  /** Stops the writers and waits for their in-flight requests. */
  async stop(): Promise<WriteLog> {
    this.#stop = true;
    await Promise.all(this.#loops);
    return this.log;
  }
}

/** Waits until every node in `among` holds exactly the same instance set of `service`. */
export async function waitSameInstances(
  c: ProcessCluster,
  service: string,
  among: string[],
  timeoutMs = 20_000,
): Promise<Set<string>> {
  return await waitFor(
    `identical ${service} instances on ${among.join(",")}`,
    timeoutMs,
    async () => {
      const sets = await Promise.all(among.map((id) => c.staleInstances(id, service)));
      if (sets.some((s) => s === null)) return undefined;
      const first = [...sets[0]!].sort().join(",");
      return sets.every((s) => [...s!].sort().join(",") === first) ? sets[0]! : undefined;
    },
  );
}
