/**
 * One data plane: the router, the HTTP forwarders and TCP proxies on every traffic listener,
 * the inbound TCP tunnel bridge and the metrics they record. A proxy runs one in-process
 * (`workers: 1`) or one per worker thread, all bound to the same ports with `SO_REUSEPORT` so
 * the kernel spreads connections over them.
 *
 * Everything here is per data plane (per worker): balancer state, outlier detection,
 * retry budgets, connection pools and metric counters. Only the circuit breaker's in-flight
 * request counts are shared, through {@linkcode SharedLimits}.
 * @module
 */
import { PROBE_INTERVAL_MS, tcpReachable } from "../resilience/reach_probe.ts";
import { turnNow } from "../forward/batch_clock.ts";
// Types only: a data-plane worker loads no config schema (zod costs each isolate ~10 MB).
import type { ProxyConfig } from "../../config/proxy_schema.ts";
import { upstreamKey } from "../../config/upstream_key.ts";
import type { Logger } from "../../common/log.ts";
import { Registry } from "../../common/metrics.ts";
import { ConnectionPool, DEFAULT_CONNECT_TIMEOUT_MS, HttpForwarder } from "../forward/mod.ts";
import { TcpProxy } from "../tcp/mod.ts";
import { ProxyMetrics } from "../observe/proxy_metrics.ts";
import type { MuxSessionRegistry } from "../mux/session_registry.ts";
import type { PreparedCatalog } from "../discovery/catalog.ts";
import type { DestinationStats } from "./destination.ts";
import {
  HTTP_PROXY_LISTENER,
  INBOUND_LISTENER,
  MeshRouter,
  upstreamListenerName,
} from "./router.ts";
import { TcpByteDeltas } from "../tcp/byte_deltas.ts";
import type { SharedLimits } from "../resilience/shared_limits.ts";
import { Observability } from "../observe/setup.ts";
import type { DataPlaneChange, DataPlaneChangeResult } from "./plane_change.ts";
import type { ProxyLimitsConfig, UpstreamConfig } from "../../config/proxy_reload.ts";
import { connectTunnel, TunnelBridge } from "../tcp/mod.ts";
import { connectMtls, type MeshTls, MeshTlsState, type OutboundTls } from "../tls/mod.ts";
import { MUX_ALPN } from "../mux/frame.ts";
import { H2Plane } from "./h2_plane.ts";
import { withOriginDialer } from "../egress/mod.ts";
import {
  DEFAULT_MAX_SESSION_AGE_MS,
  DEFAULT_SESSIONS_PER_ENDPOINT,
  MuxConnector,
  type MuxConnectorStats,
} from "../mux/connector.ts";
import { type IngressBinding, registerIngressMetrics, startIngress } from "../ingress/mod.ts";

/** How often periodic policy work (outlier detection) runs, in ms. */
export const TICK_INTERVAL_MS = 250;

/** The ports the traffic listeners are bound to. */
export interface ListenerPorts {
  /** Inbound listener port. */
  inbound: number;
  /** `http_proxy` port, if configured. */
  httpProxy: number | null;
  /** Upstream listener ports by {@linkcode upstreamKey} (the service, or `service@caller`). */
  upstreams: Record<string, number>;
  /** Ingress listener ports, in `ingress` order. @default none */
  ingress?: number[];
}

/** Options of {@linkcode DataPlane.start}. */
export interface DataPlaneOptions {
  /** The validated proxy.yaml. */
  config: ProxyConfig;
  /** Structured logger. */
  logger: Logger;
  /** In-flight counts shared with the other data planes of this proxy. */
  limits: SharedLimits;
  /** This data plane's index (the `worker` label). @default 0 */
  index?: number;
  /** How many data planes share the traffic. @default 1 */
  workers?: number;
  /** Ports to bind instead of the configured ones (already chosen by the main thread). */
  ports?: ListenerPorts;
  /** Bind with `SO_REUSEPORT`, so other data planes can bind the same ports. @default false */
  reusePort?: boolean;
  /** Millisecond clock for policy decisions. @default performance.now */
  now?: () => number;
  /** Uniform random in [0, 1). @default Math.random */
  random?: () => number;
  /**
   * mTLS between proxies: outbound connections to other proxies present this identity and
   * check theirs. Without it the mesh hop is plaintext. Pass the {@linkcode MeshTlsState}
   * the inbound listener was bound with, so one update reaches both directions.
   */
  tls?: MeshTls | MeshTlsState;
  /**
   * An already bound inbound listener (the mTLS one, bound asynchronously beforehand);
   * required with `tls`, so an identity never falls back to a plaintext inbound.
   */
  inboundListener?: Deno.Listener;
  /** The `ingress` listeners, already bound (`bindIngress`, asynchronous like the inbound's). */
  ingressListeners?: readonly IngressBinding[];
  /**
   * Which client pooled mTLS connections use (see `connectMtls`).
   * @default outboundTlsFromEnv(): "auto" unless SKEIN_MESH_OUTBOUND_TLS=node
   */
  outboundTls?: OutboundTls;
  /**
   * Send calls to other proxies as streams of a few skein-mux/1 connections (when the callee
   * offers it) instead of one connection per call in flight.
   * @default muxFromEnv(): on unless SKEIN_MESH_MUX=off
   */
  mux?: boolean;
}

/** Most mux sessions per callee and worker that `SKEIN_MESH_MUX_SESSIONS` may ask for. */
export const MAX_MUX_SESSIONS_PER_ENDPOINT = 16;

/**
 * Mux sessions per callee and calling worker: `SKEIN_MESH_MUX_SESSIONS` (1 to 16), default 1.
 * One batches best (measured: two cost the callee about 20% more CPU per call); more let a
 * single busy caller spread over more of a callee's worker threads, since each session stays
 * on the worker that accepted it.
 */
export function muxSessionsFromEnv(): number {
  try {
    return parseMuxSessions(Deno.env.get("SKEIN_MESH_MUX_SESSIONS"));
  } catch {
    return DEFAULT_SESSIONS_PER_ENDPOINT;
  }
}

/** The session count a `SKEIN_MESH_MUX_SESSIONS` value asks for; the default when not a count. */
export function parseMuxSessions(v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 1) return DEFAULT_SESSIONS_PER_ENDPOINT;
  return Math.min(n, MAX_MUX_SESSIONS_PER_ENDPOINT);
}

/**
 * Whether outbound calls use skein-mux/1: on unless `SKEIN_MESH_MUX=off`, a switch back to one
 * connection per call should the mux misbehave somewhere, and the A/B knob of the benchmark.
 */
export function muxFromEnv(): boolean {
  try {
    return Deno.env.get("SKEIN_MESH_MUX") !== "off";
  } catch {
    return true;
  }
}

/**
 * The outbound TLS client chosen by `SKEIN_MESH_OUTBOUND_TLS` (`node` or `auto`): a switch
 * back to node:tls should the native client misbehave somewhere, and the A/B knob of
 * bench/mesh_bench.ts. Anything else, or no permission to read it, means "auto".
 */
export function outboundTlsFromEnv(): OutboundTls {
  try {
    return Deno.env.get("SKEIN_MESH_OUTBOUND_TLS") === "node" ? "node" : "auto";
  } catch {
    return "auto";
  }
}

/** What the admin pages read from one data plane. */
export interface DataPlaneSnapshot {
  /** This data plane's index. */
  index: number;
  /** Its Prometheus exposition. */
  metrics: string;
  /** Its per-destination endpoint state. */
  endpoints: { outbound: DestinationStats[]; inbound: DestinationStats[] };
  /** Effective policies of its outbound destinations. */
  policies: Record<string, unknown>;
  /** Whether it has applied a catalog. */
  haveCatalog: boolean;
  /** HTTP requests its forwarders parsed. */
  requests: number;
}

interface _Drainable {
  drain(ms: number): Promise<void>;
}

/** The forwarder options every HTTP listener shares, from the configured limits. */
type _Common = Omit<ConstructorParameters<typeof HttpForwarder>[1], "listener" | "pool">;

/** An upstream listener as its data plane keeps it. */
type _UpstreamListener = { u: UpstreamConfig; l: HttpForwarder | TcpProxy };

/** The forwarder limits of `l` (what {@linkcode HttpForwarder.setLimits} takes). */
function _forwarderLimits(l: ProxyLimitsConfig) {
  return {
    limits: {
      maxHeadBytes: l.max_header_bytes,
      maxHeaderCount: l.max_headers,
      maxBodyBytes: Number.MAX_SAFE_INTEGER,
    },
    maxClientConnections: l.max_connections,
    keepAliveIdleMs: l.idle_timeout,
    headerTimeoutMs: l.header_read_timeout,
  };
}

/** A running data plane. */
export class DataPlane {
  /** The bound ports. */
  readonly ports: ListenerPorts;
  /** The router (for tests). */
  readonly router: MeshRouter;
  readonly #index: number;
  readonly #metrics: ProxyMetrics;
  readonly #inbound: HttpForwarder;
  readonly #http: HttpForwarder[];
  readonly #tcp: { service: string; proxy: TcpProxy }[];
  readonly #listeners: _Drainable[];
  readonly #bridge: TunnelBridge | null;
  readonly #pools: ConnectionPool[];
  readonly #muxers: MuxConnector[];
  readonly #inboundMux: MuxSessionRegistry | null;
  readonly #ticker: ReturnType<typeof setInterval>;
  readonly #observe: Observability | null;
  readonly #prober: ReturnType<typeof setInterval>;
  readonly #common: _Common;
  readonly #openUpstream: (u: UpstreamConfig, port: number) => HttpForwarder | TcpProxy;
  readonly #upstreams = new Map<string, _UpstreamListener>();
  readonly #h2: H2Plane;
  /** The ingress listeners (their limits are their own: a reload's `limits` skip them). */
  readonly #ingress: HttpForwarder[];
  /** Requests parsed by listeners closed since start (the counter must not go back). */
  #retiredRequests = 0;
  #drained: Promise<void> | null = null;

  private constructor(parts: {
    ports: ListenerPorts;
    router: MeshRouter;
    index: number;
    metrics: ProxyMetrics;
    inbound: HttpForwarder;
    http: HttpForwarder[];
    tcp: { service: string; proxy: TcpProxy }[];
    listeners: _Drainable[];
    bridge: TunnelBridge | null;
    pools: ConnectionPool[];
    muxers: MuxConnector[];
    inboundMux: MuxSessionRegistry | null;
    observe: Observability | null;
    common: _Common;
    openUpstream: (u: UpstreamConfig, port: number) => HttpForwarder | TcpProxy;
    upstreams: _UpstreamListener[];
    h2: H2Plane;
    ingress: HttpForwarder[];
  }) {
    this.#h2 = parts.h2;
    this.ports = parts.ports;
    this.router = parts.router;
    this.#index = parts.index;
    this.#metrics = parts.metrics;
    this.#inbound = parts.inbound;
    this.#http = parts.http;
    this.#tcp = parts.tcp;
    this.#listeners = parts.listeners;
    this.#bridge = parts.bridge;
    this.#pools = parts.pools;
    this.#muxers = parts.muxers;
    this.#inboundMux = parts.inboundMux;
    this.#observe = parts.observe;
    this.#observe?.registerMetrics(parts.metrics.registry);
    this.#common = parts.common;
    this.#openUpstream = parts.openUpstream;
    this.#ingress = parts.ingress;
    for (const x of parts.upstreams) this.#upstreams.set(upstreamKey(x.u), x);
    this.#ticker = setInterval(() => this.router.tick(), TICK_INTERVAL_MS);
    this.#prober = setInterval(() => this.router.probeEjected(tcpReachable), PROBE_INTERVAL_MS);
    this.#registerCollectors();
  }

  /** Binds every traffic listener; throws (having closed what it bound) on failure. */
  static start(opts: DataPlaneOptions): DataPlane {
    const cfg = opts.config;
    const log = opts.logger;
    const index = opts.index ?? 0;
    const reusePort = opts.reusePort ?? false;
    const registry = new Registry();
    const metrics = new ProxyMetrics(registry);
    const cleanup: (() => Promise<void> | void)[] = [];
    const bind = (hostname: string, port: number) =>
      reusePort
        ? Deno.listen({ hostname, port, reusePort: true })
        : Deno.listen({ hostname, port });
    if (opts.tls !== undefined && opts.inboundListener === undefined) {
      throw new Error("mTLS data plane needs its mTLS inbound listener");
    }
    const meshTls = opts.tls === undefined ? undefined : MeshTlsState.of(opts.tls);
    const outboundTls = opts.outboundTls ?? outboundTlsFromEnv();
    // Only when configured: without it the router skips the record layer altogether.
    const observe = cfg.access_log !== undefined || cfg.telemetry.otlp !== undefined
      ? Observability.create(cfg, log)
      : null;
    if (observe !== null) cleanup.push(() => observe.close());
    try {
      const locals = cfg.services.map((s) => ({ name: s.name, port: s.port }));
      const bridge = locals.length > 0
        ? new TunnelBridge(new Map(locals.map((l) => [l.name, l.port])), log, {
          idleTimeoutMs: cfg.limits.tcp_idle_timeout,
        })
        : null;
      if (bridge) cleanup.push(() => bridge.close());
      const h2 = H2Plane.of(cfg, log, meshTls, () => router, () => common.maxClientConnections);
      cleanup.push(() => h2.drain(0).finally(() => h2.close()));
      const router = new MeshRouter({
        zone: cfg.zone,
        now: opts.now ?? turnNow,
        random: opts.random ?? Math.random,
        metrics,
        logger: log,
        // A gateway calls as `gateway/<name>`, its identity.
        source: cfg.services[0]?.name ?? (cfg.gateway ? `gateway/${cfg.gateway}` : cfg.node),
        limits: opts.limits,
        workers: opts.workers ?? 1,
        upstreams: cfg.upstreams.map((u) => ({ service: u.service, caller: u.caller })),
        locals: h2.routed(cfg.services),
        tunnelPort: (service) => bridge?.portFor(service) ?? null,
        trustDomain: meshTls?.trustDomain,
        egress: cfg.egress,
        ...(observe !== null ? { recorder: observe.recorder } : {}),
        ingress: cfg.ingress ?? [],
      });
      const common: _Common = {
        node: cfg.node,
        router,
        logger: log,
        ..._forwarderLimits(cfg.limits),
        upgradedIdleMs: cfg.limits.tcp_idle_timeout,
        h2: h2.handoff,
      };
      const listeners: _Drainable[] = [];
      const inbound = new HttpForwarder(
        opts.inboundListener ??
          bind(cfg.inbound.hostname, opts.ports?.inbound ?? cfg.inbound.port),
        // Callers' identity fields are dropped here, and the app told who called.
        { ...common, listener: { name: INBOUND_LISTENER, protocol: "http" }, callerHeader: true },
      );
      cleanup.push(() => inbound.close());
      listeners.push(inbound, h2);
      const ports: ListenerPorts = { inbound: inbound.addr.port, httpProxy: null, upstreams: {} };

      // One outbound stack (mux sessions and pooled connections) per local service the calls are
      // made for: a connection presents one service's certificate, so calls made for different
      // services never share one, and the callee authorizes each as the right caller.
      const pools: ConnectionPool[] = [];
      const muxers: MuxConnector[] = [];
      const stacks = new Map<string, ConnectionPool>();
      const poolFor = (caller: string | undefined): ConnectionPool => {
        const as = meshTls === undefined || caller === meshTls.service ? undefined : caller;
        const existing = stacks.get(as ?? "");
        if (existing !== undefined) return existing;
        const who = as === undefined ? {} : { caller: as };
        // Native rustls client for pooled HTTP connections (see connectMtls), offering the mux.
        const muxer = meshTls === undefined || !(opts.mux ?? muxFromEnv())
          ? null
          : new MuxConnector({
            sessionsPerEndpoint: muxSessionsFromEnv(),
            // A callee without the mux gets the cheaper native client, as before the mux.
            dialPlain: (ep) =>
              connectMtls(meshTls, ep, DEFAULT_CONNECT_TIMEOUT_MS, {
                outbound: outboundTls,
                ...who,
              }),
            dial: async (ep) => {
              // node:tls, not the native client: a session carries many streams, so its socket
              // needs TCP_NODELAY (or each write waits for the previous one's ACK), which Deno
              // 2.9's native TlsConn cannot set. Batching leaves little of the native client's
              // edge.
              const conn = await connectMtls(meshTls, ep, DEFAULT_CONNECT_TIMEOUT_MS, {
                outbound: "node",
                alpnProtocols: [MUX_ALPN, "http/1.1"],
                ...who,
              });
              conn.setNoDelay(true);
              return {
                conn,
                mux: conn.alpnProtocol === MUX_ALPN,
                peerIdentity: conn.peerIdentity,
                // The callee cuts the session when this certificate expires: retire it before.
                notAfter: conn.localNotAfter,
              };
            },
          });
        if (muxer !== null) {
          cleanup.push(() => muxer.close());
          muxers.push(muxer);
        }
        // Hosts outside the mesh (ExternalService endpoints) get TLS the proxy originates.
        const pool = new ConnectionPool(withOriginDialer(
          meshTls === undefined ? { now: turnNow } : {
            now: turnNow,
            // Renewed under steady traffic, like the sessions their streams ride on.
            maxAgeMs: DEFAULT_MAX_SESSION_AGE_MS,
            connect: muxer !== null
              ? (ep) => muxer.connect(ep)
              : (ep) =>
                connectMtls(meshTls, ep, DEFAULT_CONNECT_TIMEOUT_MS, {
                  outbound: outboundTls,
                  ...who,
                }),
          },
        ));
        cleanup.push(() => pool.close());
        pools.push(pool);
        stacks.set(as ?? "", pool);
        return pool;
      };
      // The default stack exists even with no listener using it yet: drain closes it.
      poolFor(undefined);
      const http: HttpForwarder[] = [];
      const tcp: { service: string; proxy: TcpProxy }[] = [];
      // Also what a configuration reload opens upstream listeners with (common's limits then).
      const openUpstream = (u: UpstreamConfig, port: number): HttpForwarder | TcpProxy => {
        const name = upstreamListenerName(u);
        const l = bind(u.listen.hostname, port);
        if (u.protocol === "tcp") {
          const p = new TcpProxy(l, {
            listener: { name, protocol: "tcp" },
            router: router.tcp(),
            logger: log,
            maxConnections: common.maxClientConnections,
            idleTimeoutMs: cfg.limits.tcp_idle_timeout,
            connect: (ep) => connectTunnel(ep, u.service, meshTls, u.caller),
          });
          tcp.push({ service: u.service, proxy: p });
          listeners.push(p);
          return p;
        }
        const f = new HttpForwarder(l, {
          ...common,
          pool: poolFor(u.caller),
          listener: { name, protocol: "http" },
        });
        http.push(f);
        listeners.push(f);
        return f;
      };
      const upstreamListeners: _UpstreamListener[] = [];
      for (const u of cfg.upstreams) {
        const key = upstreamKey(u);
        const l = openUpstream(u, opts.ports?.upstreams[key] ?? u.listen.port);
        cleanup.push(() => l.drain(0));
        upstreamListeners.push({ u, l });
        ports.upstreams[key] = l.addr.port;
      }
      if (cfg.http_proxy) {
        const hp = cfg.http_proxy;
        const f = new HttpForwarder(bind(hp.hostname, opts.ports?.httpProxy ?? hp.port), {
          ...common,
          pool: poolFor(undefined),
          listener: { name: HTTP_PROXY_LISTENER, protocol: "http" },
        });
        cleanup.push(() => f.close());
        http.push(f);
        listeners.push(f);
        ports.httpProxy = f.addr.port;
      }
      // Calls through the gateway present its own certificate: the default stack's.
      const ingress = opts.ingressListeners === undefined
        ? []
        : startIngress(cfg.ingress, opts.ingressListeners, common, poolFor(undefined));
      for (const f of ingress) {
        cleanup.push(() => f.close());
        listeners.push(f);
      }
      if (ingress.length > 0) ports.ingress = ingress.map((f) => f.addr.port);
      registerIngressMetrics(metrics.registry, opts.ingressListeners ?? [], ingress);
      return new DataPlane({
        ports,
        router,
        index,
        metrics,
        inbound,
        http,
        tcp,
        listeners,
        bridge,
        pools,
        muxers,
        inboundMux: meshTls?.muxSessions ?? null,
        observe,
        common,
        openUpstream,
        upstreams: upstreamListeners,
        h2,
        ingress,
      });
    } catch (e) {
      for (const c of cleanup.reverse()) {
        try {
          void c();
        } catch {
          // Best effort: the original error is what matters.
        }
      }
      throw e;
    }
  }

  /** Applies a new catalog (its resources read by the caller) to the router. */
  applyCatalog(p: PreparedCatalog): void {
    // A tighter Authorization must also end tunnels and WebSockets opened while it allowed them.
    if (this.router.applyCatalog(p)) this.#inbound.recheckUpgraded();
  }

  /**
   * Applies a configuration reload: removed upstream listeners stop accepting at once and
   * drain in the background (their in-flight requests and open connections finish, up to
   * `drainMs`), added ones are bound, and new limits reach every listener for what comes
   * next. Nothing already established is dropped.
   */
  reconfigure(c: DataPlaneChange): DataPlaneChangeResult {
    if (c.locals !== null) {
      this.#bridge?.setApps(new Map(c.locals.map((l) => [l.name, l.port])));
      // As with a catalog: a tighter Authorization also ends tunnels it no longer allows.
      if (this.router.setLocals(this.#h2.routed(c.locals))) this.#inbound.recheckUpgraded();
    }
    for (const key of c.remove) {
      this.#closeUpstream(key, c.drainMs);
      delete this.ports.upstreams[key];
    }
    if (c.limits !== null) {
      const l = _forwarderLimits(c.limits);
      Object.assign(this.#common, l);
      this.#inbound.setLimits(l);
      for (const f of this.#http) f.setLimits(l);
      for (const t of this.#tcp) t.proxy.setMaxConnections(l.maxClientConnections);
    }
    const result: DataPlaneChangeResult = { opened: {}, failed: [] };
    for (const u of c.add) {
      const key = upstreamKey(u);
      try {
        const l = this.#openUpstream(u, c.ports[key] ?? u.listen.port);
        this.router.addUpstream(u);
        this.#upstreams.set(key, { u, l });
        result.opened[key] = l.addr.port;
        this.ports.upstreams[key] = l.addr.port;
      } catch (e) {
        result.failed.push({ key, error: (e as Error).message ?? String(e) });
      }
    }
    return result;
  }

  #closeUpstream(key: string, ms: number): void {
    const x = this.#upstreams.get(key);
    if (x === undefined) return;
    this.#upstreams.delete(key);
    // drain() closes the listening socket before its first await: the port is free at once.
    void x.l.drain(ms).finally(() => {
      // A changed upstream was opened again under the same key: its route stays.
      if (!this.#upstreams.has(key)) this.router.removeUpstream(x.u);
      const drop = <T>(list: T[], item: T) => {
        const i = list.indexOf(item);
        if (i >= 0) list.splice(i, 1);
      };
      drop(this.#listeners, x.l);
      if (x.l instanceof HttpForwarder) {
        this.#retiredRequests += x.l.stats().requests;
        drop(this.#http, x.l);
      } else {
        const t = this.#tcp.find((t) => t.proxy === x.l);
        if (t !== undefined) drop(this.#tcp, t);
      }
    });
  }

  /** What the admin pages show of this data plane. */
  snapshot(): DataPlaneSnapshot {
    return {
      index: this.#index,
      metrics: this.#metrics.render(),
      endpoints: this.router.stats(),
      policies: this.router.policies(),
      haveCatalog: this.router.haveCatalog,
      requests: this.#requests(),
    };
  }

  /**
   * Stops accepting, drains in-flight requests up to `ms`, then closes the tunnel bridge and
   * the upstream pool. Safe to call twice.
   */
  drain(ms: number): Promise<void> {
    this.#drained ??= (async () => {
      await Promise.all(this.#listeners.map((l) => l.drain(ms)));
      await this.#bridge?.close();
      clearInterval(this.#ticker);
      clearInterval(this.#prober);
      for (const p of this.#pools) p.close();
      this.#h2.close();
      await this.#observe?.close();
    })();
    return this.#drained;
  }

  #requests(): number {
    let n = this.#inbound.stats().requests + this.#retiredRequests + this.#h2.requests;
    for (const f of this.#http) n += f.stats().requests;
    for (const f of this.#ingress) n += f.stats().requests;
    return n;
  }

  #registerCollectors(): void {
    const m = this.#metrics;
    const perWorker = m.registry.counter({
      name: "skein_worker_requests_total",
      help: "HTTP requests parsed by each data-plane worker thread of this proxy.",
      labelNames: ["worker"],
    }).labels(String(this.#index));
    let counted = 0;
    const bytes = new TcpByteDeltas();
    const addBytes = (svc: string, dir: "sent" | "received", n: number) =>
      m.tcpBytes.labels(svc, dir).inc(n);
    m.registry.onCollect(() => {
      const requests = this.#requests();
      if (requests > counted) perWorker.inc(requests - counted);
      counted = requests;
      let out = 0;
      for (const f of this.#http) out += f.stats().active;
      for (const t of this.#tcp) {
        const s = t.proxy.stats();
        out += s.active;
        bytes.collect(t.proxy, t.service, s.bytesUp, s.bytesDown, addBytes);
      }
      m.activeConnections.labels("inbound").set(this.#inbound.stats().active + this.#h2.inbound);
      m.activeConnections.labels("outbound").set(out + this.#h2.outbound);
      // Both directions always, zero when the mux is off, so dashboards need no special case.
      const o = _sumMuxStats(this.#muxers.map((x) => x.stats()));
      m.recordMux("outbound", o);
      if (this.#muxers.length > 0) m.recordMuxPlain(o.plain);
      m.recordMux("inbound", this.#inboundMux?.totals() ?? { open: 0, sessions: 0, streams: 0 });
    });
  }
}

/** The outbound mux counters of all stacks together (all zero without any). */
function _sumMuxStats(list: readonly MuxConnectorStats[]): MuxConnectorStats {
  const t: MuxConnectorStats = { sessions: 0, streams: 0, plain: 0, open: 0, writes: 0, frames: 0 };
  for (const x of list) {
    t.sessions += x.sessions;
    t.streams += x.streams;
    t.plain += x.plain;
    t.open += x.open;
    t.writes += x.writes;
    t.frames += x.frames;
  }
  return t;
}
