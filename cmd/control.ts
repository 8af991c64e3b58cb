/**
 * `skein control`: loads control.yaml and runs a control node (Raft registry + API).
 * @module
 */
import { ControlConfig, formatHostPort } from "../config/mod.ts";
import type { Logger } from "../common/log.ts";
import { ControlNode } from "../control/node/mod.ts";
import { createApi, operatorAuthorizer } from "../control/api/mod.ts";
import { hashSecret } from "../control/auth/mod.ts";
import { type CommandIo, EXIT } from "./io.ts";
import { loadModeConfig } from "./load_config.ts";
import { ensureBootstrapToken } from "./bootstrap_token.ts";

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
}

/** Runs a control node until SIGTERM/SIGINT; returns the exit code. */
export async function runControl(opts: RunControlOptions): Promise<number> {
  const cfg = await loadModeConfig(opts.configPath, ControlConfig, opts.dataDir, opts.io);
  if (!cfg) return EXIT.usage;
  const log = opts.log.with({ node: cfg.node });
  // Only the hash leaves this function: the driver registers it, the secret stays in the file.
  const bootstrapTokenHash = hashSecret(await ensureBootstrapToken(cfg.bootstrap_token_file, log));

  // The API listens first so its real port (port 0 in tests) is known before peers hear of it.
  let handler: ((req: Request) => Response | Promise<Response>) | null = null;
  const server = Deno.serve({
    hostname: cfg.api.hostname,
    port: cfg.api.port,
    onListen: () => {},
  }, (req) =>
    handler ? handler(req) : Response.json(
      { error: { code: "starting", message: "control node is starting", details: null } },
      { status: 503 },
    ));
  const apiUrl = `http://${formatHostPort({ hostname: cfg.advertise, port: server.addr.port })}`;
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
      log,
    });
  } catch (e) {
    log.error("control node failed to start", { error: e as Error });
    await server.shutdown();
    return EXIT.failure;
  }
  const app = createApi(node, {
    logger: log.with({ component: "api" }),
    maxBodyBytes: cfg.limits.max_body,
    writeTimeoutMs: cfg.limits.request_timeout,
    readTimeoutMs: cfg.limits.request_timeout,
    // Every route but the ones proxies use needs an operator token (docs/security.md).
    authorize: operatorAuthorizer({
      tokens: () => node.state().operatorTokens(),
      log: log.with({ component: "audit" }),
    }),
  });
  handler = (req) => app.fetch(req);
  log.info("api listening", { url: apiUrl });

  const stopped = Promise.withResolvers<string>();
  const onSignal = (sig: string) => () => stopped.resolve(sig);
  const sigterm = onSignal("SIGTERM");
  const sigint = onSignal("SIGINT");
  Deno.addSignalListener("SIGTERM", sigterm);
  Deno.addSignalListener("SIGINT", sigint);
  node.failed.then((e) => stopped.resolve(`fatal: ${e.message}`));
  const sig = await stopped.promise;
  Deno.removeSignalListener("SIGTERM", sigterm);
  Deno.removeSignalListener("SIGINT", sigint);
  if (sig.startsWith("fatal")) {
    // The node already closed itself; serving reads from a frozen state would mislead.
    log.error("control node failed; exiting", { reason: sig });
    await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 1000))]);
    return EXIT.failure;
  }
  log.info("stopping", { signal: sig });
  if (node.isLeader()) {
    const ok = await node.handOff(HANDOFF_TIMEOUT_MS);
    log.info(ok ? "leadership handed off" : "no successor took leadership in time");
  }
  await Promise.race([
    server.shutdown(),
    new Promise((r) => setTimeout(r, API_DRAIN_TIMEOUT_MS)),
  ]);
  await node.close();
  log.info("stopped");
  return EXIT.ok;
}
