/**
 * The proxy process assembled: data planes (listeners, router, forwarders), discovery and
 * admin, started and stopped in one place.
 *
 * Threads: with `workers: 1` the data plane runs on the main thread. With more, each worker
 * thread runs its own data plane on the same ports (`SO_REUSEPORT`) and the main thread keeps
 * discovery (registration, heartbeats, health checks of the local apps, the catalog watch)
 * and the admin listener; it posts every catalog to the workers and, on a scrape, merges
 * their metrics and endpoint state.
 *
 * Start order: the data planes first (the inbound port is what instances are registered
 * with), then the admin listener, and finally discovery, which hands over the cached catalog
 * at once and the control plane's when it answers.
 * Stop order (SPEC section 1): stop accepting and drain in-flight requests up to
 * `drain_timeout`, then deregister, then close the admin listener.
 * @module
 */
// Each config module on its own: the barrel would load the control node's schema and the YAML
// loader into the proxy.
import { formatHostPort } from "../../config/address.ts";
import type { ProxyConfig } from "../../config/proxy_schema.ts";
import { ResourceSchema } from "../../config/resource_schema.ts";
import { unenforcedResourceParts } from "../../config/unenforced.ts";
import { upstreamKey } from "../../config/upstream_key.ts";
import type { Logger } from "../../common/log.ts";
import type { TlsMaterial } from "../../common/tls/mod.ts";
import { parseCert } from "../identity/cert_info.ts";
import { type Catalog, Discovery, type ProxySelfReport } from "../discovery/mod.ts";
import { adminHandler } from "./admin.ts";
import type { DataPlaneSnapshot } from "./data_plane.ts";
import type { DestinationStats } from "./destination.ts";
import { mergeExpositions } from "../observe/metrics_merge.ts";
import { buildHeartbeatStats, DenialTap } from "../observe/heartbeat_stats.ts";
import type { DenialStats, HeartbeatStats } from "../../common/heartbeat_stats.ts";
import { type DataPlanes, LocalDataPlanes } from "./data_planes.ts";
import { workerCount, WorkerDataPlanes } from "./workers.ts";
import type { MeshTls } from "../tls/mod.ts";
import type { ProxyReloadPlan } from "../../config/proxy_reload.ts";
import type { DataPlaneChangeResult } from "./plane_change.ts";

export { TICK_INTERVAL_MS } from "./data_plane.ts";

/** Options of {@linkcode MeshProxy.start}. */
export interface MeshProxyOptions {
  /** The validated proxy.yaml. */
  config: ProxyConfig;
  /** The skein version, reported with heartbeats (for `skein ctl check`). @default "unknown" */
  version?: string;
  /** Structured logger. */
  logger: Logger;
  /** Uniform random in [0, 1), for discovery's backoff jitter. @default Math.random */
  random?: () => number;
  /** Used to reach the control plane and probe local apps. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Reaches the control API when it differs from `fetch` (HTTPS with the proxy's certificate). */
  controlFetch?: typeof fetch;
  /**
   * Reaches the control API as one local service (its certificate), for registering,
   * heartbeating and deregistering that service's instances. @default `controlFetch`
   */
  serviceControlFetch?: (service: string) => typeof fetch | undefined;
  /** Hears the trust part of every catalog (CA roots, revoked ids), for renewal and refusals. */
  onTrust?: (trust: Catalog["trust"]) => void;
  /** What the proxy holds for a local service, reported with its heartbeats (CA rotation). */
  trustReport?: (
    service: string,
  ) => { roots: string[]; leaf_root: string | null; leaf_issuer?: string | null } | null;
  /** The proxy's identity: the mesh hop (inbound and to other proxies) becomes mTLS. */
  tls?: MeshTls;
}

/** Where each listener is bound. */
export interface ProxyAddresses {
  /** Admin listener. */
  admin: string;
  /** Inbound listener. */
  inbound: string;
  /** `http_proxy` listener, if configured. */
  httpProxy: string | null;
  /** Upstream listeners by service. */
  upstreams: Record<string, string>;
  /** Ingress listeners, in `ingress` order. */
  ingress: string[];
}

/** A running proxy. */
export class MeshProxy {
  #cfg: ProxyConfig;
  readonly #log: Logger;
  readonly #planes: DataPlanes;
  readonly #admin: Deno.HttpServer<Deno.NetAddr>;
  readonly #discovery: Discovery;
  readonly #addresses: ProxyAddresses;
  /** Shared with discovery's callback, which may run before the constructor. */
  readonly #catalog: { seen: boolean };
  /** Expiry of each certificate in use (ms since the epoch) by service, for the expiry gauge. */
  readonly #certNotAfter = new Map<string, number>();
  /** The service of the default certificate (updates without a service are its). */
  #primaryService: string | undefined;
  #draining = false;
  #stopped: Promise<void> | null = null;

  private constructor(
    cfg: ProxyConfig,
    log: Logger,
    parts: {
      planes: DataPlanes;
      admin: Deno.HttpServer<Deno.NetAddr>;
      discovery: Discovery;
      addresses: ProxyAddresses;
      catalog: { seen: boolean };
    },
  ) {
    this.#catalog = parts.catalog;
    this.#cfg = cfg;
    this.#log = log;
    this.#planes = parts.planes;
    this.#admin = parts.admin;
    this.#discovery = parts.discovery;
    this.#addresses = parts.addresses;
  }

  /** Binds every listener and starts discovery; throws (having closed what it bound) on failure. */
  static async start(opts: MeshProxyOptions): Promise<MeshProxy> {
    const cfg = opts.config;
    // Denials in the audit log (from every worker) feed the control node's dashboard.
    const denials = new DenialTap();
    const log = denials.tap(opts.logger);
    const cleanup: (() => Promise<void> | void)[] = [];
    const catalog = { seen: false };
    const unenforced = new UnenforcedWarnings(log);
    try {
      const workers = workerCount(cfg.workers);
      // With an identity, every data plane (each worker) terminates mTLS on the shared port.
      const planes: DataPlanes = workers === 1
        ? await LocalDataPlanes.start(cfg, log, opts.tls)
        : await WorkerDataPlanes.start(cfg, log, workers, opts.tls);
      cleanup.push(() => planes.drain(0));
      const ports = planes.ports;

      // deno-lint-ignore prefer-const
      let self: MeshProxy | undefined;
      const admin = Deno.serve({
        hostname: cfg.admin.hostname,
        port: cfg.admin.port,
        onListen: () => {},
      }, (req) => self ? self.#adminHandler(req) : new Response("starting", { status: 503 }));
      cleanup.push(() => admin.shutdown());

      const discovery = new Discovery({
        node: cfg.node,
        zone: cfg.zone,
        advertise: cfg.advertise,
        inboundPort: ports.inbound,
        controlUrls: cfg.control,
        dataDir: cfg.data_dir,
        services: cfg.services,
        heartbeatIntervalMs: cfg.heartbeat_interval,
        ...(opts.trustReport ? { trustReport: opts.trustReport } : {}),
        logger: log,
        fetch: opts.fetch,
        controlFetch: opts.controlFetch,
        serviceFetch: opts.serviceControlFetch,
        random: opts.random ?? Math.random,
        report: () => self ? self.#report(opts.version ?? "unknown", unenforced) : undefined,
        heartbeatStats: async () =>
          self === undefined ? undefined : await self.#heartbeatStats(denials.take()),
        onCatalog: (c, from) => {
          planes.applyCatalog(c);
          unenforced.check(c.resources);
          if (c.trust.roots.length > 0) opts.onTrust?.(c.trust);
          catalog.seen = true;
          log.debug("catalog applied", { index: c.index, from });
        },
      });
      const upstreams: Record<string, string> = {};
      for (const u of cfg.upstreams) {
        const key = upstreamKey(u);
        upstreams[key] = formatHostPort({
          hostname: u.listen.hostname,
          port: ports.upstreams[key]!,
        });
      }
      const addresses: ProxyAddresses = {
        admin: formatHostPort({ hostname: cfg.admin.hostname, port: admin.addr.port }),
        inbound: formatHostPort({ hostname: cfg.inbound.hostname, port: ports.inbound }),
        httpProxy: cfg.http_proxy && ports.httpProxy !== null
          ? formatHostPort({ hostname: cfg.http_proxy.hostname, port: ports.httpProxy })
          : null,
        upstreams,
        ingress: (cfg.ingress ?? []).map((l, i) =>
          formatHostPort({ hostname: l.listen.hostname, port: ports.ingress?.[i] ?? l.listen.port })
        ),
      };
      self = new MeshProxy(cfg, log, { planes, admin, discovery, addresses, catalog });
      if (opts.tls) {
        self.#primaryService = opts.tls.service;
        self.#noteExpiry(opts.tls.material, opts.tls.service);
        for (const o of opts.tls.others ?? []) self.#noteExpiry(o.material, o.service);
      }
      log.info("data plane started", { workers: planes.count, mtls: opts.tls !== undefined });
      await discovery.start();
      return self;
    } catch (e) {
      for (const c of cleanup.reverse()) {
        try {
          await c();
        } catch {
          // Best effort: the original error is what matters.
        }
      }
      throw e;
    }
  }

  /** What this proxy tells the control plane about itself with each heartbeat. */
  #report(version: string, unenforced: UnenforcedWarnings): ProxySelfReport {
    const expiries = [...this.#certNotAfter.values()];
    return {
      node: this.#cfg.node,
      version,
      cert_not_after: expiries.length > 0 ? Math.min(...expiries) : null,
      unenforced: unenforced.parts().slice(0, MAX_REPORTED_UNENFORCED),
    };
  }

  /**
   * Uses `material` as `service`'s certificate (default: the first local service's) for new
   * mTLS handshakes (renewal); open connections keep theirs.
   */
  updateMaterial(material: TlsMaterial, service?: string): void {
    this.#noteExpiry(material, service);
    this.#planes.updateMaterial(material, service);
  }

  /** The dashboard report: the counters and in-flight counts the data planes already keep. */
  async #heartbeatStats(denied: DenialStats[]): Promise<HeartbeatStats> {
    const snaps = await this.#planes.snapshots();
    const inflight = new Map<string, number>();
    for (const d of mergeEndpoints(snaps).outbound) inflight.set(d.service, d.activeRequests);
    return buildHeartbeatStats(
      this.#cfg.node,
      mergeExpositions(snaps.map((s) => s.metrics)),
      inflight,
      denied,
      this.#certNotAfter,
    );
  }

  #noteExpiry(material: TlsMaterial, service?: string): void {
    const key = service ?? this.#primaryService ?? "";
    this.#certNotAfter.set(key, parseCert(material.certPem).notAfter);
  }

  /** Trusts `trust.roots` and refuses `trust.revoked` from now on (rotation, revocation). */
  updateTrust(trust: Catalog["trust"]): void {
    this.#planes.updateTrust(trust);
  }

  /**
   * Applies a configuration reload (`config/proxy_reload.ts`): upstream listeners opened and
   * closed (drained) and limits changed in every data plane, without dropping what is
   * established. Returns the upstreams that could not be opened; the rest applies.
   */
  async reload(plan: ProxyReloadPlan): Promise<DataPlaneChangeResult> {
    const r = await this.#planes.reconfigure({
      add: plan.add,
      remove: plan.remove,
      locals: plan.services?.locals ?? null,
      limits: plan.limits,
      drainMs: plan.running.drain_timeout,
    }, plan.running);
    const up = this.#addresses.upstreams;
    for (const k of plan.remove) delete up[k];
    for (const u of plan.add) {
      const key = upstreamKey(u);
      const port = r.opened[key];
      if (port !== undefined) up[key] = formatHostPort({ hostname: u.listen.hostname, port });
    }
    this.#cfg = {
      ...plan.running,
      upstreams: plan.running.upstreams.filter((u) => upstreamKey(u) in up),
    };
    // After the inbound routes the new apps, so nobody is sent to one it does not know yet.
    if (plan.services !== null) await this.#discovery.setServices(plan.running.services);
    return r;
  }

  /** The configuration in force (after any reloads). */
  get config(): ProxyConfig {
    return this.#cfg;
  }

  /** Where each listener is bound. */
  get addresses(): ProxyAddresses {
    return this.#addresses;
  }

  /** How many data planes (worker threads, or 1 in-process) serve traffic. */
  get workers(): number {
    return this.#planes.count;
  }

  /**
   * Graceful stop: stop accepting, drain in-flight requests up to `drain_timeout`, deregister
   * the local instances, close the admin listener. Safe to call twice.
   */
  shutdown(): Promise<void> {
    this.#stopped ??= this.#shutdown();
    return this.#stopped;
  }

  async #shutdown(): Promise<void> {
    this.#draining = true;
    const ms = this.#cfg.drain_timeout;
    this.#log.info("draining", { drain_timeout_ms: ms });
    await this.#planes.drain(ms);
    await this.#discovery.stop();
    await this.#admin.shutdown();
    this.#log.info("stopped");
  }

  #certExpiryText(): string {
    if (this.#certNotAfter.size === 0) return "";
    // The certificate that expires first is the one an alert must catch.
    const secs = (Math.min(...this.#certNotAfter.values()) - Date.now()) / 1000;
    return [
      "# HELP skein_certificate_expiry_seconds Seconds until the proxy certificate expires.",
      "# TYPE skein_certificate_expiry_seconds gauge",
      `skein_certificate_expiry_seconds ${secs.toFixed(3)}`,
      "",
    ].join("\n");
  }

  #adminHandler(req: Request): Promise<Response> {
    return adminHandler({
      node: this.#cfg.node,
      metrics: async () =>
        mergeExpositions([
          ...(await this.#planes.snapshots()).map((s) => s.metrics),
          this.#certExpiryText(),
          catalogWatchText(this.#discovery.status()),
          [
            "# HELP skein_worker_restarts_total Data-plane worker threads restarted after a crash.",
            "# TYPE skein_worker_restarts_total counter",
            `skein_worker_restarts_total ${this.#planes.restarts}`,
            "",
          ].join("\n"),
        ]),
      live: () => ({
        live: this.#planes.live(),
        workers: this.#planes.count,
        worker_restarts: this.#planes.restarts,
      }),
      ready: () => {
        const d = this.#discovery.status();
        const reasons: string[] = [];
        if (this.#draining) reasons.push("draining");
        if (!this.#catalog.seen) reasons.push("no catalog yet (control plane not reached)");
        return {
          ready: reasons.length === 0,
          reasons,
          node: this.#cfg.node,
          workers: this.#planes.count,
          catalog: { source: d.catalogSource, index: d.catalogIndex },
          control: { url: d.controlUrl, watch_url: d.watchUrl, reachable: d.controlReachable },
          instances: d.instances,
        };
      },
      config: async () => ({
        config: this.#cfg,
        addresses: this.#addresses,
        workers: this.#planes.count,
        policies: (await this.#planes.snapshots())[0]?.policies ?? {},
        discovery: this.#discovery.status(),
      }),
      endpoints: async () => mergeEndpoints(await this.#planes.snapshots()),
    })(req);
  }
}

/** The catalog watch's health as Prometheus text: failures so far and whether it is stale. */
export function catalogWatchText(d: { watchFailures: number; catalogStale: boolean }): string {
  return [
    "# HELP skein_catalog_watch_failures_total Catalog queries that failed (unreachable, refused, oversized or invalid answers).",
    "# TYPE skein_catalog_watch_failures_total counter",
    `skein_catalog_watch_failures_total ${d.watchFailures}`,
    "# HELP skein_catalog_stale 1 while the last catalog query failed and the proxy serves its last-known catalog.",
    "# TYPE skein_catalog_stale gauge",
    `skein_catalog_stale ${d.catalogStale ? 1 : 0}`,
    "",
  ].join("\n");
}

/** The `/endpoints` page of several data planes. */
export interface MergedEndpoints {
  /** Outbound destinations, merged over workers. */
  outbound: DestinationStats[];
  /** Inbound (local app) destinations, merged over workers. */
  inbound: DestinationStats[];
  /** Requests parsed by each worker, by worker index. */
  workers: { index: number; requests: number }[];
}

/**
 * Merges per-worker endpoint state into one view: an endpoint counts as eligible only when it
 * is eligible in every worker (so "eligible" means every worker can use it) and as ejected
 * when any worker has ejected it (outlier detection runs per worker); in-flight counts and
 * retry budgets add up; the breaker's in-flight count is shared, so it is taken once.
 */
export function mergeEndpoints(snaps: readonly DataPlaneSnapshot[]): MergedEndpoints {
  const merge = (lists: DestinationStats[][]): DestinationStats[] => {
    const by = new Map<string, DestinationStats>();
    for (const list of lists) {
      for (const d of list) {
        const have = by.get(d.service);
        if (have === undefined) {
          by.set(d.service, structuredClone(d));
          continue;
        }
        have.eligible = Math.min(have.eligible, d.eligible);
        have.retryBudgetAvailable += d.retryBudgetAvailable;
        const eps = new Map(have.endpoints.map((e) => [e.endpoint.key, e]));
        for (const e of d.endpoints) {
          const h = eps.get(e.endpoint.key);
          if (h === undefined) {
            // Present in this worker only (a catalog update in flight): not usable everywhere.
            have.endpoints.push({ ...e, eligible: false });
            continue;
          }
          h.active += e.active;
          h.ejected ||= e.ejected;
          h.eligible &&= e.eligible;
          h.ewmaMs = Math.max(h.ewmaMs, e.ewmaMs);
        }
      }
    }
    return [...by.values()];
  };
  return {
    outbound: merge(snaps.map((s) => s.endpoints.outbound)),
    inbound: merge(snaps.map((s) => s.endpoints.inbound)),
    workers: snaps.map((s) => ({ index: s.index, requests: s.requests })),
  };
}

/**
 * Warns once per process about each resource part the catalog carries that this version does
 * not enforce (`config/unenforced.ts`), so nobody takes a RateLimit for a limit in force.
 */
export class UnenforcedWarnings {
  readonly #log: Logger;
  readonly #warned = new Set<string>();
  #last = "";

  /** Warnings go to `log`. */
  constructor(log: Logger) {
    this.#log = log;
  }

  /** The resource parts warned about so far. */
  parts(): string[] {
    return [...this.#warned];
  }

  /** Looks at a catalog's raw resources; returns the parts warned about for the first time. */
  check(raw: readonly unknown[]): string[] {
    // Catalogs change with every registration; their resources much less often.
    const key = JSON.stringify(raw);
    if (key === this.#last) return [];
    this.#last = key;
    // Unreadable resources are the router's to report; only valid ones count here.
    const valid = raw.flatMap((r) => {
      const p = ResourceSchema.safeParse(r);
      return p.success ? [p.data] : [];
    });
    const fresh: string[] = [];
    for (const part of unenforcedResourceParts(valid)) {
      if (this.#warned.has(part) || this.#warned.size >= MAX_UNENFORCED_WARNINGS) continue;
      this.#warned.add(part);
      fresh.push(part);
      this.#log.warn("resource part not enforced by this version; ignored", { part });
    }
    return fresh;
  }
}

/** Most distinct parts {@linkcode UnenforcedWarnings} remembers (then it stops warning). */
export const MAX_UNENFORCED_WARNINGS = 1000;
/** Most unenforced settings sent with a heartbeat (the control API's limit). */
export const MAX_REPORTED_UNENFORCED = 32;
