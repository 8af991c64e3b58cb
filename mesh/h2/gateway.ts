/**
 * The HTTP/2 side of one data plane: serves the connections its HTTP/1 forwarders hand over
 * after seeing the h2 preface (h2c from apps on upstream listeners and `http_proxy`, h2 from
 * other proxies on the inbound, where ALPN `h2` led them), one {@linkcode serveCall} per stream,
 * and keeps the client sessions each listener's calls go out on.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import type { H2Handoff } from "../forward/mod.ts";
import { type CallConn, type CallDeps, serveCall } from "./call.ts";
import { H2ClientSessions, type H2Dial, MAX_CONCURRENT_STREAMS } from "./client_sessions.ts";
import { H1Upstreams } from "./h1_upstream.ts";
import { H2Connection } from "./wire/connection.ts";
import { runOver } from "./wire/transport.ts";

/** How often idle connections and sessions are looked for, in ms. */
const SWEEP_INTERVAL_MS = 1000;

/** Where one listener's calls go out: its sessions' key and how they are dialled. */
export interface H2Route {
  /** Sessions are shared by routes with the same key (e.g. the same calling identity). */
  key: string;
  /** Opens the connection a session runs on. */
  dial: H2Dial;
  /**
   * Whether the destination (the router's cluster) speaks HTTP/1.1 only: its calls then go
   * out as HTTP/1.1 requests. @default every destination speaks HTTP/2
   */
  speaksH1?: (cluster: string) => boolean;
}

/** Options of {@linkcode H2Gateway}. */
export interface H2GatewayOptions extends CallDeps {
  /** Where events go. */
  logger: Logger;
  /** A connection or session with no open stream for this long is closed (both sides), in ms. */
  idleMs: number;
  /** An outgoing session older than this takes no new calls, in ms. */
  maxSessionAgeMs: number;
  /**
   * Most h2 client connections served at once (all listeners together); one more is closed at
   * once. Asked per connection, so a reload's new limit holds for the next one.
   */
  maxConnections: () => number;
}

/** What a gateway has served, for the data plane's metrics. */
export interface H2GatewayStats {
  /** Streams (requests) received since start. */
  requests: number;
  /** Client connections open now, by the name of the listener they arrived on. */
  connections: Record<string, number>;
}

/** Serves handed-over h2 connections of one data plane. */
export class H2Gateway {
  readonly #o: H2GatewayOptions;
  /** Client connections, with the listener they arrived on. */
  readonly #conns = new Map<H2Connection, string>();
  #requests = 0;
  readonly #sweeper: ReturnType<typeof setInterval>;
  readonly #out = new Map<string, H2ClientSessions>();
  #h1: H1Upstreams | null = null;
  #draining = false;

  /** Creates the gateway; it serves nothing until a connection is handed over. */
  constructor(o: H2GatewayOptions) {
    this.#o = o;
    // Idle connections and sessions are closed by one sweep: a per-connection timer re-armed
    // on every frame costs CPU per request.
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    Deno.unrefTimer(this.#sweeper);
  }

  #sweep(): void {
    const now = this.#o.now();
    for (const c of this.#conns.keys()) {
      if (c.activeStreams === 0 && now - c.lastActive >= this.#o.idleMs) c.close();
    }
    for (const out of this.#out.values()) out.sweep();
  }

  /** Connections served now. */
  get connections(): number {
    return this.#conns.size;
  }

  /** Requests served so far and connections open now. */
  stats(): H2GatewayStats {
    const connections: Record<string, number> = {};
    for (const l of this.#conns.values()) connections[l] = (connections[l] ?? 0) + 1;
    return { requests: this.#requests, connections };
  }

  /** Serves an h2 connection arriving through `route`'s listener. */
  accept(h: H2Handoff, route: H2Route): void {
    if (this.#draining || this.#conns.size >= this.#o.maxConnections()) {
      // Handed over, so the HTTP/1 listener's cap no longer counts it: this one does.
      if (!this.#draining) this.#o.logger.debug("h2 connection refused: at the connection cap");
      h.conn.close();
      return;
    }
    let out = this.#out.get(route.key);
    if (out === undefined) {
      out = new H2ClientSessions({
        dial: route.dial,
        maxAgeMs: this.#o.maxSessionAgeMs,
        idleMs: this.#o.idleMs,
        maxHeaderListBytes: this.#o.limits.maxHeadBytes,
      });
      this.#out.set(route.key, out);
    }
    const speaksH1 = route.speaksH1;
    const conn: CallConn = {
      listener: h.listener,
      client: h.client,
      clientAddr: h.clientAddr,
      callerLine: h.callerLine,
      sessions: out,
      ...(speaksH1 === undefined
        ? {}
        : { h1: { upstreams: this.#h1 ??= new H1Upstreams(), speaksH1 } }),
    };
    const c = new H2Connection({
      role: "server",
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      maxHeaderListBytes: this.#o.limits.maxHeadBytes,
      now: this.#o.now,
      onStream: (stream, headers, endStream) => {
        this.#requests++;
        void serveCall(this.#o, conn, stream, headers, endStream);
      },
    });
    this.#conns.set(c, h.listener.name);
    c.on("close", () => this.#conns.delete(c));
    c.on("failed", (code: number, why: string) => {
      // Debug only: a hostile client must not be able to fill the log.
      this.#o.logger.debug("h2 connection ended", { listener: h.listener.name, code, why });
    });
    runOver(c, h.conn, h.initial);
  }

  /**
   * Stops taking connections, asks every client to stop (GOAWAY; open streams finish), and
   * after `deadlineMs` ends what is left.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.#draining = true;
    for (const c of this.#conns.keys()) c.close();
    const started = Date.now();
    while (this.#conns.size > 0 && Date.now() - started < deadlineMs) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const c of this.#conns.keys()) c.destroy();
    clearInterval(this.#sweeper);
    this.#o.timers.close();
    for (const out of this.#out.values()) out.destroy();
    this.#out.clear();
    this.#h1?.destroy();
  }
}
