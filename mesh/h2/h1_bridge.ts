/**
 * HTTP/1.1 calls to a local app that speaks only HTTP/2 (`protocol: http2` or `grpc`): the
 * inbound forwards them as usual to a loopback bridge, which sends each on as a stream of an
 * h2c session to the app, and turns the answer (its trailers into chunked trailers) back into
 * HTTP/1.1. Loaded with the first connection to a bridge.
 * @module
 */
import http from "node:http";
import { H2ClientSessions, type H2Dial } from "./client_sessions.ts";
import { duplexOf } from "./duplex.ts";
import type { H2Headers } from "./headers.ts";
import type { UpstreamSession, UpstreamStream } from "./upstream.ts";
import { ErrorCode } from "./wire/frames.ts";

/** Fields HTTP/2 forbids or that belong to the HTTP/1.1 hop (RFC 9113 section 8.2.2). */
const _HOP = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "http2-settings",
]);

/** How often idle app sessions are looked for, in ms. */
const SWEEP_INTERVAL_MS = 1000;

/** Translates HTTP/1.1 connections to h2c sessions with the apps they are for. */
export class H1ToH2Bridge {
  readonly #server: http.Server;
  readonly #sessions: H2ClientSessions;
  readonly #apps = new WeakMap<object, number>();
  readonly #sweeper: ReturnType<typeof setInterval>;

  /** Creates the bridge: `dial` reaches an app (TCP), `idleMs` closes idle app sessions. */
  constructor(opts: { dial: H2Dial; idleMs: number; maxSessionAgeMs: number }) {
    this.#sessions = new H2ClientSessions({
      dial: opts.dial,
      idleMs: opts.idleMs,
      maxAgeMs: opts.maxSessionAgeMs,
    });
    this.#server = http.createServer((req, res) => {
      const port = this.#apps.get(req.socket);
      if (port === undefined) {
        res.destroy();
        return;
      }
      void this.#forward(req, res, port);
    });
    this.#server.on("clientError", (_e, socket) => socket.destroy());
    this.#sweeper = setInterval(() => this.#sessions.sweep(), SWEEP_INTERVAL_MS);
    Deno.unrefTimer(this.#sweeper);
  }

  /** Serves one connection (from the inbound's pool) whose calls go to the app on `appPort`. */
  serve(conn: Deno.Conn, appPort: number): void {
    const d = duplexOf(conn);
    this.#apps.set(d, appPort);
    this.#server.emit("connection", d);
  }

  async #forward(req: http.IncomingMessage, res: http.ServerResponse, port: number) {
    const h: H2Headers = {
      ":method": req.method ?? "GET",
      ":scheme": "http",
      ":path": req.url ?? "/",
      ":authority": req.headers.host ?? `127.0.0.1:${port}`,
    };
    for (const name in req.headers) if (!_HOP.has(name)) h[name] = req.headers[name];
    if (/(^|,)\s*trailers\s*(,|;|$)/i.test(String(req.headers.te ?? ""))) h["te"] = "trailers";
    let session: UpstreamSession;
    try {
      session = await this.#sessions.get({ key: `127.0.0.1:${port}`, hostname: "127.0.0.1", port });
    } catch {
      // The forwarder sees the connection end without an answer, as with the app itself.
      res.destroy();
      return;
    }
    const bodiless = req.method === "GET" || req.method === "HEAD";
    let up: UpstreamStream;
    const endStream = bodiless && req.readableEnded;
    try {
      up = session.request(h, { endStream });
    } catch {
      res.destroy();
      return;
    }
    up.on("error", () => {});
    if (!endStream) {
      req.on("data", (c: Uint8Array) => {
        if (!up.write(c)) {
          req.pause();
          up.once("drain", () => req.resume());
        }
      });
      req.on("end", () => up.end());
    }
    let trailers: H2Headers | null = null;
    up.on("trailers", (t: H2Headers) => trailers = t);
    up.on("response", (head: H2Headers) => {
      const out: Record<string, string | string[]> = {};
      for (const name in head) {
        const v = head[name];
        if (v !== undefined && name.charCodeAt(0) !== 58 /* ":" */ && !_HOP.has(name)) {
          out[name] = v;
        }
      }
      res.writeHead(Number(head[":status"] ?? 502), out);
      up.on("data", (c: Uint8Array) => {
        if (!res.write(c)) {
          up.pause();
          res.once("drain", () => up.resume());
        }
      });
      up.on("end", () => {
        // Trailers travel only in a chunked body (a response without Content-Length).
        if (trailers !== null) res.addTrailers(_trailerFields(trailers));
        res.end();
      });
    });
    up.on("close", () => {
      if (!res.writableEnded) res.destroy();
    });
    res.on("close", () => {
      if (!up.closed) up.close(ErrorCode.CANCEL);
    });
  }

  /** Closes the app sessions and the connections served. */
  close(): void {
    clearInterval(this.#sweeper);
    this.#sessions.destroy();
    this.#server.closeAllConnections?.();
  }
}

function _trailerFields(t: H2Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in t) {
    const v = t[name];
    if (v !== undefined && name.charCodeAt(0) !== 58) {
      out[name] = Array.isArray(v) ? v.join(", ") : v;
    }
  }
  return out;
}
