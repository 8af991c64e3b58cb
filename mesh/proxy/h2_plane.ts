/**
 * The HTTP/2 side of one data plane, as the data plane wires it: the h2 server its HTTP
 * listeners hand h2c and h2 connections to (loaded on first use, `mesh/h2/lazy.ts`), how each
 * listener's calls go out (mTLS with ALPN h2 to proxies, h2c or HTTP/1.1 to local apps by their
 * `protocol`), and the loopback bridges that let HTTP/1.1 calls reach HTTP/2-only apps.
 * @module
 */
import type { Logger } from "../../common/log.ts";
// Types only: a data-plane worker loads no config schema.
import type { ProxyConfig } from "../../config/proxy_schema.ts";
import {
  CoarseTimers,
  DEFAULT_MAX_RETRY_BODY_BYTES,
  type H2Handoff,
  type Router,
} from "../forward/mod.ts";
import type { HeadLimits } from "../http1/mod.ts";
import { LazyH2 } from "../h2/lazy.ts";
import type { H2Route } from "../h2/gateway.ts";
import { turnNow } from "../forward/batch_clock.ts";
import { DEFAULT_MAX_SESSION_AGE_MS } from "../mux/connector.ts";
import type { MeshTlsState } from "../tls/mod.ts";
import { type DeclaredApp, H2AppBridges, speaksH2 } from "./h2_app_bridges.ts";
import { h2Dialer, plainH2Dial } from "./h2_dial.ts";
import {
  HTTP_PROXY_LISTENER,
  INBOUND_LISTENER,
  type LocalApp,
  UPSTREAM_LISTENER_PREFIX,
} from "./router.ts";

/** Options of {@linkcode H2Plane}. */
export interface H2PlaneOptions {
  /** This proxy's node name. */
  node: string;
  /** Where events go. */
  logger: Logger;
  /** Head limits h2 header blocks are held to. */
  limits: HeadLimits;
  /** Idle connections and sessions close after this, in ms. */
  idleMs: number;
  /** The mesh hop's mTLS; undefined: plaintext (h2c between proxies). */
  meshTls: MeshTlsState | undefined;
  /** Most h2 client connections at once (`limits.max_connections`, read per connection). */
  maxConnections: () => number;
  /** The data plane's router (asked per request; it may be made after this plane). */
  router: () => Router;
}

/** One data plane's HTTP/2 side. */
export class H2Plane {
  readonly #o: H2PlaneOptions;
  readonly #bridges: H2AppBridges;
  readonly #protocols = new Map<string, string | undefined>();
  readonly #lazy: LazyH2;
  readonly #routes = new Map<string, H2Route>();

  /** Binds nothing until {@linkcode routed} meets an HTTP/2 app; loads no h2 code yet. */
  constructor(o: H2PlaneOptions) {
    this.#o = o;
    this.#bridges = new H2AppBridges({
      idleMs: o.idleMs,
      maxSessionAgeMs: DEFAULT_MAX_SESSION_AGE_MS,
      logger: o.logger,
    });
    this.#lazy = new LazyH2({
      router: { route: (head, listener, client) => o.router().route(head, listener, client) },
      node: o.node,
      logger: o.logger,
      limits: o.limits,
      maxRetryBodyBytes: DEFAULT_MAX_RETRY_BODY_BYTES,
      now: turnNow,
      timers: new CoarseTimers(turnNow),
      idleMs: o.idleMs,
      maxSessionAgeMs: DEFAULT_MAX_SESSION_AGE_MS,
      maxConnections: o.maxConnections,
    });
  }

  /** The plane of a data plane running `cfg` (its limits, node and idle time). */
  static of(
    cfg: ProxyConfig,
    logger: Logger,
    meshTls: MeshTlsState | undefined,
    router: () => Router,
    maxConnections: () => number | undefined,
  ): H2Plane {
    return new H2Plane({
      node: cfg.node,
      logger,
      limits: {
        maxHeadBytes: cfg.limits.max_header_bytes,
        maxHeaderCount: cfg.limits.max_headers,
        maxBodyBytes: Number.MAX_SAFE_INTEGER,
      },
      idleMs: cfg.limits.idle_timeout,
      meshTls,
      // Per data plane, as the HTTP/1 listeners' cap is per listener and worker.
      maxConnections: () => maxConnections() ?? cfg.limits.max_connections,
      router,
    });
  }

  /**
   * The local apps as the router reaches them over HTTP/1.1 (an HTTP/2-only app through its
   * bridge), remembering how each speaks; call again when they change.
   */
  routed(apps: readonly DeclaredApp[]): LocalApp[] {
    this.#protocols.clear();
    for (const a of apps) this.#protocols.set(a.name, a.protocol);
    return this.#bridges.routed(apps);
  }

  /**
   * The handoff every HTTP listener of the data plane is given: a connection is served by the
   * route of the listener it arrived on (the inbound's to local apps; an upstream listener's or
   * `http_proxy`'s to other proxies, as the listener's caller). Other listeners (ingress) do
   * not serve h2c: the connection is closed.
   */
  readonly handoff = (h: H2Handoff): void => {
    const route = this.#route(h.listener.name);
    if (route === null) {
      this.#o.logger.debug("h2c is not served on this listener", { listener: h.listener.name });
      h.conn.close();
      return;
    }
    this.#lazy.accept(h, route);
  };

  #route(listener: string): H2Route | null {
    let r = this.#routes.get(listener);
    if (r !== undefined) return r;
    if (listener === INBOUND_LISTENER) {
      r = {
        key: INBOUND_LISTENER,
        // The app itself, not its HTTP/1.1 bridge.
        dial: (ep) => plainH2Dial({ ...ep, port: this.#bridges.appPortOf(ep.port) }),
        speaksH1: (service) => !speaksH2(this.#protocols.get(service)),
      };
    } else if (listener === HTTP_PROXY_LISTENER) {
      r = h2Dialer(this.#o.meshTls, undefined);
    } else if (listener.startsWith(UPSTREAM_LISTENER_PREFIX)) {
      // `upstream:<service>` or `upstream:<service>@<caller>` (config/upstream_key.ts).
      const key = listener.slice(UPSTREAM_LISTENER_PREFIX.length);
      const at = key.lastIndexOf("@");
      r = h2Dialer(this.#o.meshTls, at < 0 ? undefined : key.slice(at + 1));
    } else {
      return null;
    }
    this.#routes.set(listener, r);
    return r;
  }

  /** HTTP/2 requests (streams) served so far. */
  get requests(): number {
    return this.#lazy.stats().requests;
  }

  /** HTTP/2 client connections open now on the inbound. */
  get inbound(): number {
    return this.#lazy.stats().connections[INBOUND_LISTENER] ?? 0;
  }

  /** HTTP/2 client connections open now on the other listeners. */
  get outbound(): number {
    let n = 0;
    for (const [name, k] of Object.entries(this.#lazy.stats().connections)) {
      if (name !== INBOUND_LISTENER) n += k;
    }
    return n;
  }

  /** Drains the h2 connections (open streams finish, up to `ms`). */
  async drain(ms: number): Promise<void> {
    await this.#lazy.drain(ms);
  }

  /** Closes the bridges: call once the inbound, whose calls they carry, has drained. */
  close(): void {
    this.#bridges.close();
  }
}
