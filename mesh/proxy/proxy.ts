/**
 * The proxy process assembled: listeners, router, discovery and admin, started and stopped in
 * one place.
 *
 * Start order: the inbound listener first (its port is what instances are registered with),
 * then the upstream and `http_proxy` listeners, the admin listener, and finally discovery,
 * which hands over the cached catalog at once and the control plane's when it answers.
 * Stop order (SPEC section 1): stop accepting and drain in-flight requests up to
 * `drain_timeout`, then deregister, then close the admin listener.
 * @module
 */
import { formatHostPort, type ProxyConfig } from "../../config/mod.ts";
import type { Logger } from "../../common/log.ts";
import { ConnectionPool, HttpForwarder } from "../forward/mod.ts";
import { TcpProxy } from "../tcp/mod.ts";
import { ProxyMetrics } from "../proxy_metrics.ts";
import { Discovery } from "../discovery/mod.ts";
import { adminHandler } from "./admin.ts";
import {
  HTTP_PROXY_LISTENER,
  INBOUND_LISTENER,
  MeshRouter,
  UPSTREAM_LISTENER_PREFIX,
} from "./router.ts";
import { connectTunnel, TunnelBridge } from "./tcp_tunnel.ts";

/** How often periodic policy work (outlier detection) runs, in ms. */
export const TICK_INTERVAL_MS = 250;

/** Options of {@linkcode MeshProxy.start}. */
export interface MeshProxyOptions {
  /** The validated proxy.yaml. */
  config: ProxyConfig;
  /** Structured logger. */
  logger: Logger;
  /** Millisecond clock for policy decisions. @default performance.now */
  now?: () => number;
  /** Uniform random in [0, 1). @default Math.random */
  random?: () => number;
  /** Used to reach the control plane and probe local apps. @default globalThis.fetch */
  fetch?: typeof fetch;
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
}

interface _Listener {
  name: string;
  drain(ms: number): Promise<void>;
}

/** A running proxy. */
export class MeshProxy {
  readonly #cfg: ProxyConfig;
  readonly #log: Logger;
  readonly #metrics: ProxyMetrics;
  readonly #router: MeshRouter;
  readonly #listeners: _Listener[];
  readonly #inbound: HttpForwarder;
  readonly #outbound: HttpForwarder[];
  readonly #tcp: { service: string; proxy: TcpProxy }[];
  readonly #bridge: TunnelBridge | null;
  readonly #admin: Deno.HttpServer<Deno.NetAddr>;
  readonly #discovery: Discovery;
  readonly #ticker: ReturnType<typeof setInterval>;
  readonly #addresses: ProxyAddresses;
  #draining = false;
  #stopped: Promise<void> | null = null;

  private constructor(
    cfg: ProxyConfig,
    log: Logger,
    parts: {
      metrics: ProxyMetrics;
      router: MeshRouter;
      inbound: HttpForwarder;
      outbound: HttpForwarder[];
      tcp: { service: string; proxy: TcpProxy }[];
      listeners: _Listener[];
      bridge: TunnelBridge | null;
      admin: Deno.HttpServer<Deno.NetAddr>;
      discovery: Discovery;
      addresses: ProxyAddresses;
    },
  ) {
    this.#cfg = cfg;
    this.#log = log;
    this.#metrics = parts.metrics;
    this.#router = parts.router;
    this.#inbound = parts.inbound;
    this.#outbound = parts.outbound;
    this.#tcp = parts.tcp;
    this.#listeners = parts.listeners;
    this.#bridge = parts.bridge;
    this.#admin = parts.admin;
    this.#discovery = parts.discovery;
    this.#addresses = parts.addresses;
    this.#ticker = setInterval(() => this.#router.tick(), TICK_INTERVAL_MS);
  }

  /** Binds every listener and starts discovery; throws (having closed what it bound) on failure. */
  static async start(opts: MeshProxyOptions): Promise<MeshProxy> {
    const cfg = opts.config;
    const log = opts.logger;
    const now = opts.now ?? (() => performance.now());
    const random = opts.random ?? Math.random;
    const metrics = new ProxyMetrics();
    const source = cfg.services[0]?.name ?? cfg.node;
    const cleanup: (() => Promise<void> | void)[] = [];
    try {
      const locals = cfg.services.map((s) => ({ name: s.name, port: s.port }));
      const bridge = locals.length > 0
        ? new TunnelBridge(new Map(locals.map((l) => [l.name, l.port])), log)
        : null;
      if (bridge) cleanup.push(() => bridge.close());
      const router = new MeshRouter({
        zone: cfg.zone,
        now,
        random,
        metrics,
        logger: log,
        source,
        upstreams: cfg.upstreams.map((u) => u.service),
        locals,
        tunnelPort: () => bridge?.port ?? null,
      });
      const limits = {
        maxHeadBytes: cfg.limits.max_header_bytes,
        maxHeaderCount: cfg.limits.max_headers,
        maxBodyBytes: Number.MAX_SAFE_INTEGER,
      };
      const common = {
        node: cfg.node,
        router,
        logger: log,
        limits,
        maxClientConnections: cfg.limits.max_connections,
        keepAliveIdleMs: cfg.limits.idle_timeout,
        headerTimeoutMs: cfg.limits.header_read_timeout,
      };
      const listeners: _Listener[] = [];
      const inbound = HttpForwarder.listen(cfg.inbound.hostname, cfg.inbound.port, {
        ...common,
        listener: { name: INBOUND_LISTENER, protocol: "http" },
      });
      cleanup.push(() => inbound.close());
      listeners.push({ name: INBOUND_LISTENER, drain: (ms) => inbound.drain(ms) });

      const pool = new ConnectionPool();
      cleanup.push(() => pool.close());
      const outbound: HttpForwarder[] = [];
      const tcp: { service: string; proxy: TcpProxy }[] = [];
      const upstreams: Record<string, string> = {};
      for (const u of cfg.upstreams) {
        const name = UPSTREAM_LISTENER_PREFIX + u.service;
        if (u.protocol === "tcp") {
          const p = TcpProxy.listen(u.listen.hostname, u.listen.port, {
            listener: { name, protocol: "tcp" },
            router: router.tcp(),
            logger: log,
            maxConnections: cfg.limits.max_connections,
            connect: (ep) => connectTunnel(ep, u.service),
          });
          cleanup.push(() => p.drain(0));
          tcp.push({ service: u.service, proxy: p });
          listeners.push({ name, drain: (ms) => p.drain(ms) });
          upstreams[u.service] = formatHostPort({ hostname: u.listen.hostname, port: p.addr.port });
        } else {
          const f = HttpForwarder.listen(u.listen.hostname, u.listen.port, {
            ...common,
            pool,
            listener: { name, protocol: "http" },
          });
          cleanup.push(() => f.close());
          outbound.push(f);
          listeners.push({ name, drain: (ms) => f.drain(ms) });
          upstreams[u.service] = formatHostPort({ hostname: u.listen.hostname, port: f.addr.port });
        }
      }
      let httpProxy: string | null = null;
      if (cfg.http_proxy) {
        const hp = cfg.http_proxy;
        const f = HttpForwarder.listen(hp.hostname, hp.port, {
          ...common,
          pool,
          listener: { name: HTTP_PROXY_LISTENER, protocol: "http" },
        });
        cleanup.push(() => f.close());
        outbound.push(f);
        listeners.push({ name: HTTP_PROXY_LISTENER, drain: (ms) => f.drain(ms) });
        httpProxy = formatHostPort({ hostname: hp.hostname, port: f.addr.port });
      }

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
        inboundPort: inbound.addr.port,
        controlUrls: cfg.control,
        dataDir: cfg.data_dir,
        services: cfg.services,
        heartbeatIntervalMs: cfg.heartbeat_interval,
        logger: log,
        fetch: opts.fetch,
        random,
        onCatalog: (c, from) => {
          router.applyCatalog(c);
          log.debug("catalog applied", { index: c.index, from });
        },
      });
      const addresses: ProxyAddresses = {
        admin: formatHostPort({ hostname: cfg.admin.hostname, port: admin.addr.port }),
        inbound: formatHostPort({ hostname: cfg.inbound.hostname, port: inbound.addr.port }),
        httpProxy,
        upstreams,
      };
      self = new MeshProxy(cfg, log, {
        metrics,
        router,
        inbound,
        outbound,
        tcp,
        listeners,
        bridge,
        admin,
        discovery,
        addresses,
      });
      self.#registerCollectors();
      cleanup.push(() => clearInterval(self!.#ticker));
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

  /** Where each listener is bound. */
  get addresses(): ProxyAddresses {
    return this.#addresses;
  }

  /** The router (for tests and the admin pages). */
  get router(): MeshRouter {
    return this.#router;
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
    await Promise.all(this.#listeners.map((l) => l.drain(ms)));
    await this.#bridge?.close();
    clearInterval(this.#ticker);
    await this.#discovery.stop();
    await this.#admin.shutdown();
    this.#log.info("stopped");
  }

  #registerCollectors(): void {
    const m = this.#metrics;
    const sent = new Map<string, number>();
    m.registry.onCollect(() => {
      let out = 0;
      for (const f of this.#outbound) out += f.stats().active;
      for (const t of this.#tcp) {
        const s = t.proxy.stats();
        out += s.active;
        // Counters only go up: add what moved since the last scrape.
        for (const [dir, v] of [["sent", s.bytesUp], ["received", s.bytesDown]] as const) {
          const k = `${t.service}\u0000${dir}`;
          const before = sent.get(k) ?? 0;
          if (v > before) m.tcpBytes.labels(t.service, dir).inc(v - before);
          sent.set(k, v);
        }
      }
      m.activeConnections.labels("inbound").set(this.#inbound.stats().active);
      m.activeConnections.labels("outbound").set(out);
    });
  }

  #adminHandler(req: Request): Response {
    return adminHandler({
      node: this.#cfg.node,
      metrics: () => this.#metrics.render(),
      ready: () => {
        const d = this.#discovery.status();
        const reasons: string[] = [];
        if (this.#draining) reasons.push("draining");
        if (!this.#router.haveCatalog) reasons.push("no catalog yet (control plane not reached)");
        return {
          ready: reasons.length === 0,
          reasons,
          node: this.#cfg.node,
          catalog: { source: d.catalogSource, index: d.catalogIndex },
          control: { url: d.controlUrl, reachable: d.controlReachable },
          instances: d.instances,
        };
      },
      config: () => ({
        config: this.#cfg,
        addresses: this.#addresses,
        policies: this.#router.policies(),
        discovery: this.#discovery.status(),
      }),
      endpoints: () => this.#router.stats(),
    })(req);
  }
}
