/**
 * `skein proxy`: loads proxy.yaml and runs a proxy until SIGTERM/SIGINT.
 * @module
 */
import { ProxyConfig } from "../config/mod.ts";
import type { Logger } from "../common/log.ts";
import { MeshProxy, type MeshTls } from "../mesh/proxy/mod.ts";
import {
  CertRenewer,
  ControlHttp,
  ControlTrustError,
  EnrollError,
  loadIdentity,
  obtainIdentity,
  readCaBundle,
  requestRenewal,
  saveIdentity,
} from "../mesh/identity/mod.ts";
import { splitPemCerts } from "../common/tls.ts";
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
  const cleanup: (() => void)[] = [];
  try {
    // Trust first: the CA file (or, after a restart, the bundle stored with the identity) is
    // how the proxy knows it talks to the real control plane.
    const stored = await loadIdentity(cfg.data_dir).catch(() => null);
    const roots = await readCaBundle(cfg.ca_file) ??
      (stored ? splitPemCerts(stored.caPem) : []);
    if (roots.length === 0 && cfg.control.some((u) => u.startsWith("https:"))) {
      log.error("no CA to trust the control API with", {
        ca_file: cfg.ca_file,
        hint: "copy the mesh CA bundle (ca.pem from `skein ca create`) to ca_file",
      });
      return EXIT.failure;
    }
    const controlHttp = new ControlHttp(roots);
    cleanup.push(() => controlHttp.close());
    // The identity comes next: a proxy that was given a token must not run without it.
    // The proxy-to-proxy hop and the control API calls are mutual TLS, renewed on schedule.
    let tls: MeshTls | undefined;
    let renewer: CertRenewer | undefined;
    try {
      const id = await obtainIdentity({
        dataDir: cfg.data_dir,
        tokenFile: cfg.token_file,
        controlUrls: cfg.control,
        service: cfg.services[0]?.name ?? cfg.node,
        logger: log.with({ component: "identity" }),
        fetch: (r) => controlHttp.fetch(r),
      });
      if (id.kind === "none") {
        // Zero trust: without a certificate the proxy can neither reach the control API nor
        // be reached by other proxies, so it does not start half-working.
        log.error("no identity: give the proxy a join token in token_file", {
          reason: id.reason,
          hint: "skein ctl tokens create --service NAME --ttl 1h",
        });
        return EXIT.failure;
      } else {
        const spiffe = id.cert.spiffeId;
        if (spiffe === null || spiffe.kind !== "service") {
          log.error("the stored certificate carries no service SPIFFE id", {
            data_dir: cfg.data_dir,
          });
          return EXIT.failure;
        }
        log.info(id.kind === "issued" ? "certificate obtained" : "certificate loaded", {
          spiffe_id: spiffe.uri,
          serial: id.cert.serial,
          not_after: new Date(id.cert.notAfter).toISOString(),
          data_dir: cfg.data_dir,
        });
        controlHttp.setMaterial(id.material);
        renewer = new CertRenewer({
          service: spiffe.service,
          trustDomain: spiffe.trustDomain,
          initial: id.material,
          sign: (csr) =>
            requestRenewal({
              controlUrls: cfg.control,
              fetch: (r) => controlHttp.fetch(r),
              logger: log,
            }, csr),
          persist: (m) => saveIdentity(cfg.data_dir, m),
          logger: log.with({ component: "identity" }),
        });
        cleanup.push(() => renewer?.stop());
        // Past two thirds of its life the stored certificate is renewed before serving; a
        // control plane that does not answer leaves the still-valid one in use (retried).
        const material = await renewer.start();
        controlHttp.setMaterial(material);
        tls = { material, trustDomain: spiffe.trustDomain };
      }
    } catch (e) {
      log.error("could not obtain the proxy identity", {
        err: e instanceof EnrollError || e instanceof ControlTrustError ? e.message : (e as Error),
      });
      return EXIT.failure;
    }
    let proxy: MeshProxy;
    try {
      proxy = await MeshProxy.start({
        config: cfg,
        logger: log,
        tls,
        controlFetch: (input, init) => controlHttp.fetch(input, init),
        onTrust: (trust) => {
          if (controlHttp.setRoots(trust.roots)) {
            log.info("trust bundle updated", { roots: trust.roots.length });
          }
          proxy?.updateTrust(trust);
          void renewer?.updateTrustBundle(trust.roots.join("\n"));
        },
      });
    } catch (e) {
      log.error("proxy failed to start", { err: e as Error });
      return EXIT.failure;
    }
    renewer?.onChange((m) => {
      controlHttp.setMaterial(m);
      proxy.updateMaterial(m);
    });
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
    for (const c of cleanup.reverse()) c();
    Deno.removeSignalListener("SIGTERM", sigterm);
    Deno.removeSignalListener("SIGINT", sigint);
  }
}
