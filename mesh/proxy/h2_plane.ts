/**
 * The HTTP/2 side of one data plane, as the data plane wires it: the h2 server its HTTP
 * listeners hand h2c and h2 connections to (loaded on first use, `mesh/h2/lazy.ts`), how each
 * listener's calls go out (mTLS with ALPN h2 to proxies, h2c or HTTP/1.1 to local apps by their
 * `protocol`), and the loopback bridges that let HTTP/1.1 calls reach HTTP/2-only apps.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import {
  CoarseTimers,
  DEFAULT_MAX_RETRY_BODY_BYTES,
  type H2Handoff,
  type Router,
} from "../forward/mod.ts";
import type { HeadLimits } from "../http1/mod.ts";
import { LazyH2 } from "../h2/lazy.ts";
import { turnNow } from "../forward/batch_clock.ts";
import { DEFAULT_MAX_SESSION_AGE_MS } from "../mux/connector.ts";
import type { MeshTlsState } from "../tls/mod.ts";
import { type DeclaredApp, H2AppBridges, speaksH2 } from "./h2_app_bridges.ts";
import { h2Dialer, plainH2Dial } from "./h2_dial.ts";
import { INBOUND_LISTENER, type LocalApp } from "./router.ts";

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
}

/** One data plane's HTTP/2 side. */
export class H2Plane {
  readonly #o: H2PlaneOptions;
  readonly #bridges: H2AppBridges;
  readonly #protocols = new Map<string, string | undefined>();
  #lazy: LazyH2 | null = null;

  /** Binds nothing until {@linkcode routed} meets an HTTP/2 app. */
  constructor(o: H2PlaneOptions) {
    this.#o = o;
    this.#bridges = new H2AppBridges({
      idleMs: o.idleMs,
      maxSessionAgeMs: DEFAULT_MAX_SESSION_AGE_MS,
      logger: o.logger,
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

  /** Serves the h2 connections of this data plane's listeners with `router`'s decisions. */
  attach(router: Router): void {
    const o = this.#o;
    this.#lazy = new LazyH2({
      router,
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

  /** The inbound's handoff: calls go to local apps, as h2c or HTTP/1.1 by their protocol. */
  inboundHandoff(): (h: H2Handoff) => void {
    return this.#need().handoff({
      key: INBOUND_LISTENER,
      // The app itself, not its HTTP/1.1 bridge.
      dial: (ep) => plainH2Dial({ ...ep, port: this.#bridges.appPortOf(ep.port) }),
      speaksH1: (service) => !speaksH2(this.#protocols.get(service)),
    });
  }

  /** An outbound listener's handoff: calls made for `caller` go to other proxies. */
  outboundHandoff(caller: string | undefined): (h: H2Handoff) => void {
    return this.#need().handoff(h2Dialer(this.#o.meshTls, caller));
  }

  /** HTTP/2 requests served so far and client connections open now (inbound, outbound). */
  stats(): { requests: number; inbound: number; outbound: number } {
    const st = this.#lazy?.stats() ?? { requests: 0, connections: {} };
    let inbound = 0, outbound = 0;
    for (const [name, n] of Object.entries(st.connections)) {
      if (name === INBOUND_LISTENER) inbound += n;
      else outbound += n;
    }
    return { requests: st.requests, inbound, outbound };
  }

  /** Drains the h2 connections (open streams finish, up to `ms`). */
  async drain(ms: number): Promise<void> {
    await this.#lazy?.drain(ms);
  }

  /** Closes the bridges: call once the inbound, whose calls they carry, has drained. */
  close(): void {
    this.#bridges.close();
  }

  #need(): LazyH2 {
    if (this.#lazy === null) throw new Error("H2Plane used before attach()");
    return this.#lazy;
  }
}
