/**
 * `skein proxy`: loads proxy.yaml and runs a proxy until SIGTERM/SIGINT.
 * @module
 */
import { ProxyConfig } from "../config/mod.ts";
import type { Logger } from "../common/log.ts";
import { MeshProxy, type MeshTls } from "../mesh/proxy/mod.ts";
import { EnrollError, obtainIdentity } from "../mesh/identity/mod.ts";
import { type CommandIo, EXIT } from "./io.ts";
import { loadModeConfig } from "./load_config.ts";

/** Options of {@linkcode runProxy}. */
export interface RunProxyOptions {
  configPath: string;
  dataDir?: string;
  io: CommandIo;
  log: Logger;
}

/** Runs a proxy until SIGTERM/SIGINT; returns the exit code. */
export async function runProxy(opts: RunProxyOptions): Promise<number> {
  const cfg = await loadModeConfig(opts.configPath, ProxyConfig, opts.dataDir, opts.io);
  if (!cfg) return EXIT.usage;
  const log = opts.log.with({ node: cfg.node });

  // Signals are caught before anything binds, so a stop during start-up is still graceful.
  const stopped = Promise.withResolvers<string>();
  const sigterm = () => stopped.resolve("SIGTERM");
  const sigint = () => stopped.resolve("SIGINT");
  Deno.addSignalListener("SIGTERM", sigterm);
  Deno.addSignalListener("SIGINT", sigint);
  try {
    // The identity comes first: a proxy that was given a token must not run without it.
    // Without a token file and a stored identity the mesh stays plaintext; with one, the
    // proxy-to-proxy hop is mutual TLS.
    let tls: MeshTls | undefined;
    try {
      const id = await obtainIdentity({
        dataDir: cfg.data_dir,
        tokenFile: cfg.token_file,
        controlUrls: cfg.control,
        service: cfg.services[0]?.name ?? cfg.node,
        logger: log.with({ component: "identity" }),
      });
      if (id.kind === "none") {
        log.warn("no identity: starting without a certificate (plaintext mesh)", {
          reason: id.reason,
        });
      } else {
        const spiffe = id.cert.spiffeId;
        if (spiffe === null) {
          log.error("the stored certificate carries no SPIFFE id", { data_dir: cfg.data_dir });
          return EXIT.failure;
        }
        tls = { material: id.material, trustDomain: spiffe.trustDomain };
        log.info(id.kind === "issued" ? "certificate obtained" : "certificate loaded", {
          spiffe_id: id.cert.spiffeId?.uri ?? "none",
          serial: id.cert.serial,
          not_after: new Date(id.cert.notAfter).toISOString(),
          data_dir: cfg.data_dir,
        });
      }
    } catch (e) {
      log.error("could not obtain the proxy identity", {
        err: e instanceof EnrollError ? e.message : (e as Error),
      });
      return EXIT.failure;
    }
    let proxy: MeshProxy;
    try {
      proxy = await MeshProxy.start({ config: cfg, logger: log, tls });
    } catch (e) {
      log.error("proxy failed to start", { err: e as Error });
      return EXIT.failure;
    }
    const a = proxy.addresses;
    log.info("proxy listening", {
      admin: a.admin,
      inbound: a.inbound,
      http_proxy: a.httpProxy,
      upstreams: Object.entries(a.upstreams).map(([s, addr]) => `${s}=${addr}`).join(","),
    });
    const sig = await stopped.promise;
    log.info("stopping", { signal: sig });
    await proxy.shutdown();
    return EXIT.ok;
  } finally {
    Deno.removeSignalListener("SIGTERM", sigterm);
    Deno.removeSignalListener("SIGINT", sigint);
  }
}
