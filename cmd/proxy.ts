/**
 * `skein proxy`: loads proxy.yaml and runs a proxy until SIGTERM/SIGINT.
 * @module
 */
import { listenForReload } from "./reload.ts";
import { applyLogConfig, type LogControl } from "./log_control.ts";
import { VERSION } from "./version.ts";
import { planProxyReload } from "../config/proxy_reload.ts";
import type { Logger } from "../common/log.ts";
import { MeshProxy } from "../mesh/proxy/mod.ts";
import { type MeshTls } from "../mesh/tls/mod.ts";
import {
  ActivationRenewal,
  CertRenewer,
  ControlHttp,
  ControlTrustError,
  EnrollError,
  gatewayIdentityProblem,
  loadIdentity,
  obtainIdentities,
  readCaBundle,
  requestRenewal,
  saveIdentity,
  type ServiceIdentity,
  trustReport,
} from "../mesh/identity/mod.ts";
import {
  identityLabel,
  keepsATrustedRoot,
  splitPemCerts,
  type TlsMaterial,
} from "../common/tls/mod.ts";
import { type CommandIo, EXIT } from "./cli/io.ts";
import { readProxyConfig } from "./proxy_config_child.ts";

/** Options of {@linkcode runProxy}. */
export interface RunProxyOptions {
  configPath: string;
  dataDir?: string;
  io: CommandIo;
  log: Logger;
  /** The process's log settings, which the file's `log:` sets at start. */
  logControl?: LogControl;
}

/** Runs a proxy until SIGTERM/SIGINT; returns the exit code. */
export async function runProxy(opts: RunProxyOptions): Promise<number> {
  const cfg = await readProxyConfig(opts.configPath, opts.dataDir, opts.io, opts.log);
  if (!cfg) return EXIT.usage;
  // Before the data planes start: workers take their log level from it.
  applyLogConfig(opts.logControl, cfg.log);
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
    // Both: after a CA rotation the stored bundle has the new root while ca_file may still
    // hold only the old one.
    const roots = [
      ...new Set([
        ...(await readCaBundle(cfg.ca_file) ?? []),
        ...(stored ? splitPemCerts(stored.caPem) : []),
      ]),
    ];
    // Join tokens are secrets until used; say so when others could have read them.
    const tokenMode = (await Deno.stat(cfg.token_file).catch(() => null))?.mode;
    if (tokenMode != null && (tokenMode & 0o077) !== 0) {
      log.warn("token_file is readable by group or others; make it 0600", {
        token_file: cfg.token_file,
        mode: (tokenMode & 0o777).toString(8),
      });
    }
    // The roots trusted now; a new bundle must keep at least one of them (see onTrust).
    let trusted = new Set(roots);
    if (roots.length === 0 && cfg.control.some((u) => u.startsWith("https:"))) {
      log.error("no CA to trust the control API with", {
        ca_file: cfg.ca_file,
        hint: "copy the mesh CA bundle (ca.pem from `skein ca create`) to ca_file",
      });
      return EXIT.failure;
    }
    // The first identity's client makes the reads (catalog watch); each local service writes
    // about its own instances with its own certificate, the only one the API accepts for them.
    const controlHttp = new ControlHttp(roots);
    cleanup.push(() => controlHttp.close());
    const https = new Map<string, ControlHttp>();
    const renewers: { service: string; renewer: CertRenewer }[] = [];
    // Once the CA signs with a new root, certificates are renewed at once (CA rotation).
    const activation = new ActivationRenewal({
      renewers: () => renewers.map((r) => r.renewer),
      logger: log,
    });
    cleanup.push(() => {
      activation.stop();
      for (const r of renewers) r.renewer.stop();
    });
    let trustDomain = "";
    /**
     * Takes one service identity into use: a control API client with its certificate (the
     * first service's is the shared one) and a renewer, started (renewing first if due).
     */
    const adopt = async (
      id: ServiceIdentity,
      first: boolean,
    ): Promise<{ service: string; material: TlsMaterial } | string> => {
      const spiffe = id.cert.spiffeId;
      if (spiffe === null || spiffe.kind === "control" || spiffe.trustDomain !== trustDomain) {
        return "a stored certificate carries no proxy SPIFFE id of the trust domain";
      }
      const wrongKind = gatewayIdentityProblem(cfg.gateway, spiffe);
      if (wrongKind !== null) return wrongKind;
      // A service name, or `gateway/<name>` for a gateway: what the rest of the proxy keys by.
      const label = identityLabel(spiffe);
      log.info(id.kind === "issued" ? "certificate obtained" : "certificate loaded", {
        spiffe_id: spiffe.uri,
        serial: id.cert.serial,
        not_after: new Date(id.cert.notAfter).toISOString(),
        data_dir: id.dir,
      });
      const http = first ? controlHttp : new ControlHttp([...trusted], id.material);
      if (!first) cleanup.push(() => http.close());
      http.setMaterial(id.material);
      https.set(label, http);
      const renewer = new CertRenewer({
        service: label,
        trustDomain,
        initial: id.material,
        // Each identity renews with its own certificate: the CA signs the caller's identity.
        sign: (csr) =>
          requestRenewal({
            controlUrls: cfg.control,
            fetch: (r) => http.fetch(r),
            logger: log,
          }, csr),
        persist: (m) => saveIdentity(id.dir, m),
        logger: log.with({ component: "identity", service: label }),
      });
      renewers.push({ service: label, renewer });
      // Past two thirds of its life a stored certificate is renewed before serving; a
      // control plane that does not answer leaves the still-valid one in use (retried).
      const material = await renewer.start();
      http.setMaterial(material);
      return { service: label, material };
    };
    // The identities come next: a proxy that was given tokens must not run without them.
    // The proxy-to-proxy hop and the control API calls are mutual TLS, renewed on schedule.
    let tls: MeshTls | undefined;
    try {
      const services = [...new Set(cfg.services.map((s) => s.name))];
      const got = await obtainIdentities({
        dataDir: cfg.data_dir,
        tokenFile: cfg.token_file,
        controlUrls: cfg.control,
        services,
        logger: log.with({ component: "identity" }),
        fetch: (r) => controlHttp.fetch(r),
      });
      if (got.identities.length === 0) {
        // Zero trust: without a certificate the proxy can neither reach the control API nor
        // be reached by other proxies, so it does not start half-working.
        log.error("no identity: give the proxy a join token in token_file", {
          reason: got.reasons.join("; ") || `no identity in ${cfg.data_dir}`,
          hint: cfg.gateway !== undefined
            ? `skein ctl tokens create --gateway ${cfg.gateway} --ttl 1h`
            : "skein ctl tokens create --service NAME --ttl 1h",
        });
        return EXIT.failure;
      }
      if (got.missing.length > 0) {
        log.error(
          "no identity for some local services: put one join token per service in token_file",
          {
            missing: got.missing.join(","),
            reason: got.reasons.join("; "),
            hint: "skein ctl tokens create --service NAME --ttl 1h, one line per token",
          },
        );
        return EXIT.failure;
      }
      trustDomain = got.identities[0]!.cert.spiffeId!.trustDomain;
      const materials: { service: string; material: TlsMaterial }[] = [];
      for (const [i, id] of got.identities.entries()) {
        const r = await adopt(id, i === 0);
        if (typeof r === "string") {
          log.error(r, { dir: id.dir, trust_domain: trustDomain });
          return EXIT.failure;
        }
        materials.push(r);
      }
      const [primary, ...others] = materials;
      tls = { material: primary!.material, service: primary!.service, others, trustDomain };
    } catch (e) {
      log.error("could not obtain the proxy identity", {
        err: e instanceof EnrollError || e instanceof ControlTrustError ? e.message : (e as Error),
      });
      return EXIT.failure;
    }
    let proxy: MeshProxy | undefined;
    // The cached catalog's trust arrives while the proxy is still starting (discovery hands it
    // over inside start()): kept here and applied once there is a proxy to apply it to, or a
    // restart without a control plane would forget the revocations it had.
    let pendingTrust: Parameters<MeshProxy["updateTrust"]>[0] | null = null;
    try {
      proxy = await MeshProxy.start({
        config: cfg,
        version: VERSION,
        logger: log,
        tls,
        controlFetch: (input, init) => controlHttp.fetch(input, init),
        serviceControlFetch: (service) => https.get(service)?.fetch,
        trustReport: (service) => {
          const m = renewers.find((r) => r.service === service)?.renewer.current();
          return m ? trustReport(m) : null;
        },
        onTrust: (trust) => {
          // Rather than hand every identity check to unknown roots (see keepsATrustedRoot).
          const next = trust.roots.flatMap((r) => splitPemCerts(r));
          if (!keepsATrustedRoot(trusted, next)) {
            log.error("refusing a trust bundle that keeps none of the current roots", {
              roots: next.length,
            });
            return;
          }
          trusted = new Set(next);
          let changed = false;
          for (const http of https.values()) changed = http.setRoots(trust.roots) || changed;
          if (changed) log.info("trust bundle updated", { roots: trust.roots.length });
          if (proxy === undefined) pendingTrust = trust;
          else proxy.updateTrust(trust);
          for (const r of renewers) void r.renewer.updateTrustBundle(trust.roots.join("\n"));
          activation.onRoots(trust.roots);
        },
      });
    } catch (e) {
      log.error("proxy failed to start", { err: e as Error });
      return EXIT.failure;
    }
    if (pendingTrust !== null) proxy.updateTrust(pendingTrust);
    pendingTrust = null;
    const started = proxy;
    for (const { service, renewer } of renewers) {
      renewer.onChange((m) => {
        https.get(service)?.setMaterial(m);
        started.updateMaterial(m, service);
      });
    }
    /**
     * Obtains certificates for local services added by a reload (stored ones, else enrolled
     * with a join token from `token_file`) and takes them into use; returns the services it
     * could not, with why.
     */
    const enrolServices = async (wanted: string[]): Promise<Map<string, string>> => {
      const failed = new Map<string, string>();
      // A service removed and added back still has its certificate (renewed all along).
      const names = wanted.filter((n) => !https.has(n));
      if (names.length === 0) return failed;
      // Enrolment is anonymous TLS with the join token; a client certificate has no part in it.
      const anon = new ControlHttp([...trusted]);
      try {
        const got = await obtainIdentities({
          dataDir: cfg.data_dir,
          tokenFile: cfg.token_file,
          controlUrls: cfg.control,
          services: [cfg.services[0]!.name, ...names],
          logger: log.with({ component: "identity" }),
          fetch: (r) => anon.fetch(r),
        });
        for (const id of got.identities) {
          if (!names.includes(id.service)) continue;
          const r = await adopt(id, false);
          if (typeof r === "string") {
            failed.set(id.service, r);
            continue;
          }
          started.updateMaterial(r.material, r.service);
          const renewer = renewers.find((x) => x.service === r.service)!.renewer;
          renewer.onChange((m) => {
            https.get(r.service)?.setMaterial(m);
            started.updateMaterial(m, r.service);
          });
        }
        const why = got.reasons.join("; ") ||
          "no certificate: put a join token for it in token_file (skein ctl tokens create)";
        for (const n of got.missing) if (names.includes(n)) failed.set(n, why);
      } catch (e) {
        for (const n of names) failed.set(n, (e as Error).message ?? String(e));
      } finally {
        anon.close();
      }
      return failed;
    };
    // A SIGHUP applies what changed in proxy.yaml that can change at run time (services,
    // upstreams, limits, drain_timeout) and names the rest as needing a restart
    // (docs/operations.md).
    const stopReload = listenForReload({
      path: opts.configPath,
      load: (io) => readProxyConfig(opts.configPath, opts.dataDir, io, log),
      io: opts.io,
      log,
      current: cfg,
      reconcile: async (_current, file) => {
        // A service new to this proxy needs its certificate first; without one its instances
        // (and upstreams calling as it) are refused and the rest applies.
        const newNames = planProxyReload(started.config, file).services?.newNames ?? [];
        const missing = newNames.length === 0 ? new Map<string, string>() : await enrolServices(
          newNames,
        );
        const next = missing.size === 0
          ? file
          : { ...file, services: file.services.filter((s) => !missing.has(s.name)) };
        const plan = planProxyReload(started.config, next);
        const r = await started.reload(plan);
        const refused = [
          ...[...missing].map(([name, why]) => `service ${name}: ${why}`),
          ...plan.refused,
          ...r.failed.map((f) => `upstream ${f.key}: ${f.error}`),
        ];
        const failed = new Set(r.failed.map((f) => `+upstream:${f.key}`));
        if (Object.keys(r.opened).length > 0 || plan.remove.length > 0) {
          log.info("upstream listeners changed", {
            upstreams: Object.entries(started.addresses.upstreams).map(([s, addr]) =>
              `${s}=${addr}`
            ).join(","),
          });
        }
        return {
          applied: plan.applied.filter((a) => !failed.has(a)),
          needsRestart: plan.needsRestart,
          refused,
          running: started.config,
        };
      },
    });
    cleanup.push(stopReload);
    // Said last: whoever waits for this line may send a SIGHUP at once, and a SIGHUP that
    // arrived before its handler would end the process.
    const a = started.addresses;
    log.info("proxy listening", {
      admin: a.admin,
      inbound: a.inbound,
      http_proxy: a.httpProxy,
      upstreams: Object.entries(a.upstreams).map(([s, addr]) => `${s}=${addr}`).join(","),
      ...(a.ingress.length > 0 ? { ingress: a.ingress.join(",") } : {}),
    });
    const sig = await stopped.promise;
    log.info("stopping", { signal: sig });
    await started.shutdown();
    return EXIT.ok;
  } finally {
    for (const c of cleanup.reverse()) c();
    Deno.removeSignalListener("SIGTERM", sigterm);
    Deno.removeSignalListener("SIGINT", sigint);
  }
}
