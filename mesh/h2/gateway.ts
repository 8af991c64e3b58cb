/**
 * The HTTP/2 side of one data plane: serves the connections its HTTP/1 forwarders hand over
 * after seeing the h2 preface (h2c from apps on upstream listeners and `http_proxy`, h2 from
 * other proxies on the inbound, where ALPN `h2` led them), one {@linkcode serveCall} per stream,
 * and keeps the client sessions each listener's calls go out on.
 * @module
 */
import http2 from "node:http2";
import type { Logger } from "../../common/log.ts";
import type { H2Handoff } from "../forward/mod.ts";
import { type CallConn, type CallDeps, serveCall } from "./call.ts";
import { H2ClientSessions, type H2Dial, MAX_CONCURRENT_STREAMS } from "./client_sessions.ts";
import { duplexOf } from "./duplex.ts";
import { H1Upstreams } from "./h1_upstream.ts";

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
  readonly #server: http2.Http2Server;
  /** Client connections, with their listener, open streams and when one last ended. */
  readonly #sessions = new Map<
    http2.ServerHttp2Session,
    { listener: string; streams: number; last: number }
  >();
  #requests = 0;
  readonly #sweeper: ReturnType<typeof setInterval>;
  readonly #out = new Map<string, H2ClientSessions>();
  #h1: H1Upstreams | null = null;
  #next: { h: H2Handoff; route: H2Route; sessions: H2ClientSessions } | null = null;
  #draining = false;

  /** Creates the gateway; it serves nothing until a connection is handed over. */
  constructor(o: H2GatewayOptions) {
    this.#o = o;
    this.#server = http2.createServer({
      settings: {
        maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
        enablePush: false,
        maxHeaderListSize: o.limits.maxHeadBytes,
      },
    });
    this.#server.on("session", (s) => this.#onSession(s));
    // Idle connections and sessions are closed by one sweep: a per-session timeout is re-armed
    // on every frame, which cost measurable CPU per request.
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    Deno.unrefTimer(this.#sweeper);
  }

  #sweep(): void {
    const now = this.#o.now();
    for (const [s, use] of this.#sessions) {
      if (use.streams === 0 && now - use.last >= this.#o.idleMs) s.close();
    }
    for (const out of this.#out.values()) out.sweep();
  }

  /** Connections (sessions) served now. */
  get connections(): number {
    return this.#sessions.size;
  }

  /** Requests served so far and connections open now. */
  stats(): H2GatewayStats {
    const connections: Record<string, number> = {};
    for (const u of this.#sessions.values()) {
      connections[u.listener] = (connections[u.listener] ?? 0) + 1;
    }
    return { requests: this.#requests, connections };
  }

  /** Serves an h2 connection arriving through `route`'s listener. */
  accept(h: H2Handoff, route: H2Route): void {
    if (this.#draining || this.#sessions.size >= this.#o.maxConnections()) {
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
      });
      this.#out.set(route.key, out);
    }
    // The server makes the session inside emit(): #onSession picks up what it belongs to.
    this.#next = { h, route, sessions: out };
    this.#server.emit("connection", duplexOf(h.conn, h.initial));
    if (this.#next !== null) {
      this.#next = null;
      this.#o.logger.warn("h2 connection got no session", { listener: h.listener.name });
      h.conn.close();
    }
  }

  #onSession(s: http2.ServerHttp2Session): void {
    const next = this.#next;
    this.#next = null;
    if (next === null) {
      s.destroy();
      return;
    }
    const { h, route, sessions } = next;
    const speaksH1 = route.speaksH1;
    const conn: CallConn = {
      listener: h.listener,
      client: h.client,
      clientAddr: h.clientAddr,
      callerLine: h.callerLine,
      sessions,
      ...(speaksH1 === undefined
        ? {}
        : { h1: { upstreams: this.#h1 ??= new H1Upstreams(), speaksH1 } }),
    };
    const use = { listener: h.listener.name, streams: 0, last: this.#o.now() };
    this.#sessions.set(s, use);
    s.on("error", () => {});
    s.on("close", () => this.#sessions.delete(s));
    s.on("stream", (stream, headers, flags: number) => {
      this.#requests++;
      use.streams++;
      stream.once("close", () => {
        use.streams--;
        use.last = this.#o.now();
      });
      // END_STREAM on the headers: no body will follow, and the tries' headers can say so.
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      void serveCall(this.#o, conn, stream, headers as Record<string, string>, endStream);
    });
  }

  /**
   * Stops taking connections, asks every client to stop (GOAWAY; open streams finish), and
   * after `deadlineMs` ends what is left.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.#draining = true;
    for (const s of this.#sessions.keys()) s.close();
    const started = Date.now();
    while (this.#sessions.size > 0 && Date.now() - started < deadlineMs) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const s of this.#sessions.keys()) s.destroy();
    clearInterval(this.#sweeper);
    this.#o.timers.close();
    for (const out of this.#out.values()) out.destroy();
    this.#out.clear();
    this.#h1?.destroy();
  }
}
