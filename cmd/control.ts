/**
 * `skein control`: loads control.yaml and runs a control node (Raft registry + API).
 * @module
 */
import { listenForReload } from "./reload.ts";
import { applyLogConfig, type LogControl } from "./log_control.ts";
import { VERSION } from "./version.ts";
import { ControlConfig, formatHostPort } from "../config/mod.ts";
import type { Logger } from "../common/log.ts";
import { ControlNode } from "../control/node/mod.ts";
import {
  type ApiHandler,
  type ApiHttpsServer,
  type ApiIntercept,
  type ApiLimits,
  ApiMetrics,
  createControlApi,
  createMtlsFetch,
  operatorAuthorizer,
  serveApiHttps,
} from "../control/api/mod.ts";
import { type CaState, loadOrCreateSeedCa } from "../control/ca/mod.ts";
import { ControlIdentity } from "../control/tls/mod.ts";
import { hashSecret } from "../control/auth/mod.ts";
import { type CommandIo, EXIT } from "./cli/io.ts";
import { loadModeConfig } from "./load_config.ts";
import { seedPaths } from "./seed_paths.ts";
import { ensureBootstrapToken } from "./bootstrap_token.ts";
import type { SpanSink } from "../common/trace/span_sink.ts";
import { DEFAULT_SAMPLING } from "../common/trace/trace_context.ts";
import type { ApiTracing } from "../control/api/tracing.ts";
import { DashboardWindow } from "../control/dashboard/window.ts";

/** How long a stopping leader waits for a successor before it just leaves. */
export const HANDOFF_TIMEOUT_MS = 3000;
/** How long in-flight API requests may take to finish on shutdown. */
export const API_DRAIN_TIMEOUT_MS = 5000;

/** Options of {@linkcode runControl}. */
export interface RunControlOptions {
  configPath: string;
  dataDir?: string;
  io: CommandIo;
  log: Logger;
  /** The process's log settings, which the file's `log:` may set (and a reload change). */
  logControl?: LogControl;
}

/** Control keys a SIGHUP applies without a restart. */
export const CONTROL_RELOADABLE_KEYS = ["log", "limits"] as const;

/** Runs a control node until SIGTERM/SIGINT; returns the exit code. */
export async function runControl(opts: RunControlOptions): Promise<number> {
  const cfg = await loadModeConfig(opts.configPath, ControlConfig, opts.dataDir, opts.io);
  if (!cfg) return EXIT.usage;
  applyLogConfig(opts.logControl, cfg.log);
  const log = opts.log.with({ node: cfg.node });
  // Only the hash leaves this function: the driver registers it, the secret stays in the file.
  const bootstrapTokenHash = hashSecret(await ensureBootstrapToken(cfg.bootstrap_token_file, log));

  // The CA seed gives this node its certificate before Raft has replicated anything, so the
  // Raft port and the API speak mTLS from the first byte. A lone node may create its own seed.
  let identity: ControlIdentity;
  let seedCa: CaState;
  try {
    seedCa = await loadOrCreateSeedCa({
      ...seedPaths(cfg.tls),
      trustDomain: cfg.trust_domain,
      create: cfg.peers.filter((p) => p.id !== cfg.node).length === 0 && !cfg.join,
      now: Date.now(),
      logger: log,
    });
    if (seedCa.roots[0]?.keyPem === undefined && cfg.ca.rotate_before_expiry !== undefined) {
      // Said, not silently dropped: without the root key no node can make the next root.
      log.warn(
        "ca.rotate_before_expiry does not apply to an offline root: sign the next intermediate " +
          "with `skein ca intermediate` before the current one expires",
        { intermediate_not_after: new Date(seedCa.roots[0]!.intermediate!.notAfter).toISOString() },
      );
    }
    identity = await ControlIdentity.create({
      node: cfg.node,
      trustDomain: cfg.trust_domain,
      sans: _sans(cfg.advertise, cfg.api.hostname),
      ca: seedCa,
      leafTtlMs: cfg.tls.cert_ttl,
      logger: log.with({ component: "tls" }),
    });
  } catch (e) {
    log.error("cannot set up this node's certificate", {
      error: (e as Error).message,
      hint: _seedHint((e as Error).message),
    });
    return EXIT.failure;
  }

  // The API listens first so its real port (port 0 in tests) is known before peers hear of it.
  let handler: ApiHandler | null = null;
  let intercept: ApiIntercept | null = null;
  let server: ApiHttpsServer;
  try {
    server = await serveApiHttps({
      hostname: cfg.api.hostname,
      port: cfg.api.port,
      material: identity.material(),
      trustDomain: cfg.trust_domain,
      isRevoked: (id) => identity.isRevoked(id),
      isDistrusted: (leaf) => identity.isDistrusted(leaf),
      logger: log.with({ component: "api_tls" }),
      intercept: (req, res, info) => intercept?.(req, res, info) ?? false,
      handler: (req, info) =>
        handler ? handler(req, info) : Response.json(
          { error: { code: "starting", message: "control node is starting", details: null } },
          { status: 503 },
        ),
    });
  } catch (e) {
    log.error("cannot listen for the API", { api: formatHostPort(cfg.api), error: e as Error });
    identity.close();
    return EXIT.failure;
  }
  identity.onChange((m) => server.updateMaterial(m));
  const apiUrl = `https://${formatHostPort({ hostname: cfg.advertise, port: server.port })}`;
  const tickMs = cfg.raft_tuning.heartbeat;
  let node: ControlNode;
  try {
    node = await ControlNode.start({
      node: cfg.node,
      dataDir: cfg.data_dir,
      raftListen: cfg.raft,
      raftAdvertise: formatHostPort({ hostname: cfg.advertise, port: cfg.raft.port }),
      apiUrl,
      peers: cfg.peers,
      join: cfg.join,
      clusterId: cfg.trust_domain,
      tickMs,
      electionTicks: Math.max(3, Math.round(cfg.raft_tuning.election_timeout / tickMs)),
      snapshotEvery: cfg.raft_tuning.snapshot_every,
      bootstrapTokenHash,
      tls: { identity, seedCa },
      caRotation: {
        rotateBeforeExpiryMs: cfg.ca.rotate_before_expiry ?? null,
        trustWaitMs: cfg.ca.trust_wait,
        onStuck: cfg.ca.on_stuck,
        leafTtlMs: cfg.tls.proxy_cert_ttl,
      },
      log,
    });
  } catch (e) {
    log.error("control node failed to start", { error: e as Error });
    await server.shutdown(0);
    identity.close();
    return EXIT.failure;
  }
  // A follower forwards some requests to the leader over HTTPS, as itself (a control identity).
  const forwarder = createMtlsFetch(() => identity.material());
  const tracer = startApiTracer(cfg, log.with({ component: "tracing" }));
  const apiLimits: ApiLimits = {
    maxBodyBytes: cfg.limits.max_body,
    writeTimeoutMs: cfg.limits.request_timeout,
    readTimeoutMs: cfg.limits.request_timeout,
    maxStaleMs: cfg.limits.max_stale,
  };
  const metrics = new ApiMetrics();
  metrics.connections = server.stats;
  const { app, watchPath } = createControlApi(node, {
    metrics,
    ...(tracer !== null ? { tracing: tracer.tracing } : {}),
    dashboard: new DashboardWindow(),
    version: VERSION,
    fetch: forwarder.fetch,
    leafTtlMs: cfg.tls.proxy_cert_ttl,
    logger: log.with({ component: "api" }),
    limits: apiLimits,
    // Every route but the ones proxies use needs an operator token (docs/security.md).
    authorize: operatorAuthorizer({
      tokens: () => node.state().operatorTokens(),
      log: log.with({ component: "audit" }),
    }),
  });
  handler = (req, info) => app.fetch(req, info);
  intercept = (req, res, info) => watchPath.intercept(req, res, info);

  const stopped = Promise.withResolvers<string>();
  let stopping = false;
  // The listeners stay installed until the node has stopped: without one, a second signal
  // (the demo's SIGTERM after a terminal's Ctrl-C reached the whole group) kills the process
  // mid-stop with the default action, skipping the hand-off and WAL close, and exiting 143.
  const onSignal = (sig: string) => () => {
    if (stopping) log.info("still stopping", { signal: sig });
    stopping = true;
    stopped.resolve(sig);
  };
  const sigterm = onSignal("SIGTERM");
  const sigint = onSignal("SIGINT");
  Deno.addSignalListener("SIGTERM", sigterm);
  Deno.addSignalListener("SIGINT", sigint);
  node.failed.then((e) => stopped.resolve(`fatal: ${e.message}`));
  const stopReload = listenForReload({
    path: opts.configPath,
    load: (io) => loadModeConfig(opts.configPath, ControlConfig, opts.dataDir, io),
    io: opts.io,
    log,
    current: cfg,
    reloadable: CONTROL_RELOADABLE_KEYS,
    apply: (next) => {
      const changed = applyLogConfig(opts.logControl, next.log);
      const l = next.limits;
      if (l.max_body !== apiLimits.maxBodyBytes) changed.push(`limits.max_body=${l.max_body}`);
      if (l.request_timeout !== apiLimits.writeTimeoutMs) {
        changed.push(`limits.request_timeout=${l.request_timeout}ms`);
      }
      apiLimits.maxBodyBytes = l.max_body;
      apiLimits.writeTimeoutMs = l.request_timeout;
      apiLimits.readTimeoutMs = l.request_timeout;
      if (l.max_stale !== apiLimits.maxStaleMs) changed.push(`limits.max_stale=${l.max_stale}ms`);
      apiLimits.maxStaleMs = l.max_stale;
      return changed;
    },
  });
  // Said once every signal has its handler: whoever waits for this line may signal at once.
  log.info("api listening", { url: apiUrl });
  const sig = await stopped.promise;
  stopping = true;
  stopReload();
  try {
    if (sig.startsWith("fatal")) {
      // The node already closed itself; serving reads from a frozen state would mislead.
      log.error("control node failed; exiting", { reason: sig });
      await server.shutdown(1000);
      forwarder.close();
      identity.close();
      return EXIT.failure;
    }
    log.info("stopping", { signal: sig });
    // A single voter has nobody to hand leadership to; trying would only log a false alarm.
    const otherVoters = node.members().filter((m) => m.voter !== false && m.node !== cfg.node);
    if (node.isLeader() && otherVoters.length > 0) {
      const ok = await node.handOff(HANDOFF_TIMEOUT_MS);
      log.info(ok ? "leadership handed off" : "no successor took leadership in time");
    }
    await server.shutdown(API_DRAIN_TIMEOUT_MS);
    forwarder.close();
    await node.close();
    await tracer?.close();
    identity.close();
    log.info("stopped");
    return EXIT.ok;
  } finally {
    Deno.removeSignalListener("SIGTERM", sigterm);
    Deno.removeSignalListener("SIGINT", sigint);
  }
}

/**
 * Names the node's certificate carries besides its SPIFFE id: what proxies and operators put in
 * their URLs (the advertise address, a specific listen address, and loopback).
 */
function _sans(advertise: string, listen: string): { ip: string[]; dns: string[] } {
  const ip = new Set<string>(["127.0.0.1"]);
  const dns = new Set<string>(["localhost"]);
  for (const h of [advertise, listen]) {
    if (h === "0.0.0.0" || h === "::" || h === "") continue;
    if (/^[0-9.]+$/.test(h) || h.includes(":")) ip.add(h);
    else dns.add(h);
  }
  return { ip: [...ip], dns: [...dns] };
}

/**
 * The API's tracer when `telemetry.otlp` is set: the OTLP exporter loads in the background
 * (only then), and calls are traced once it has.
 */
function startApiTracer(
  cfg: ControlConfig,
  log: Logger,
): { tracing: ApiTracing; close: () => Promise<void> } | null {
  const otlp = cfg.telemetry.otlp;
  if (otlp === undefined) return null;
  let sink: SpanSink | null = null;
  const loaded = import("../common/trace/otlp_sink.ts").then(({ createOtlpSink }) => {
    sink = createOtlpSink({
      endpoint: otlp,
      serviceName: "skein-control",
      resource: { "skein.node": cfg.node },
    });
    log.info("tracing on", { otlp, sampling: String(cfg.telemetry.sampling ?? DEFAULT_SAMPLING) });
  }, (e) => log.error("cannot load the tracer; API calls are not traced", { err: e as Error }));
  return {
    tracing: { sink: () => sink, sampling: cfg.telemetry.sampling ?? DEFAULT_SAMPLING },
    close: async () => {
      await loaded;
      await (sink as SpanSink | null)?.shutdown();
    },
  };
}

/** What to do about a seed refused at start, worded for the failed check. */
function _seedHint(error: string): string {
  if (/intermediate/.test(error)) {
    return "an offline-root seed is the root certificate (tls.ca_cert_file) and an intermediate " +
      "it signed with its key (tls.intermediate_cert_file, tls.intermediate_key_file), all " +
      "from one `skein ca create --offline-root` or `skein ca intermediate` run; a new " +
      "intermediate is signed where the root key is kept: `skein ca intermediate --root-cert " +
      "F --root-key F --out DIR`";
  }
  if (/root expired at|not valid before/.test(error)) {
    return "the seed root is outside its validity by this machine's clock: check the clock " +
      "(NTP); a root that really expired needs a new CA (`skein ca create --out DIR`) on every node";
  }
  if (/private key|key does not match/.test(error)) {
    return "tls.ca_key_file must be the key of tls.ca_cert_file: copy both files from the same " +
      "`skein ca create` or `skein ctl ca export-seed` output";
  }
  return "every control node needs the cluster's CA seed: `skein ca create --out DIR` once, " +
    "then copy ca.pem and ca.key to tls.ca_cert_file and tls.ca_key_file on each node";
}
