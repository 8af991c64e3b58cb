/**
 * The control API over HTTPS on `node:https`: `Deno.serve` cannot ask a client for a certificate,
 * and the API needs one from proxies while operators come with a bearer token and no certificate.
 *
 * Per connection, right after the TLS 1.3 handshake and before any HTTP is parsed: a client that
 * presented a certificate which does not verify (another CA, expired), that does not carry
 * exactly one SPIFFE id of our trust domain, or whose id is revoked, is cut. A client without a
 * certificate is let through; the routes then ask for a token. The verified peer identity is
 * handed to the handler with each request, so no header can claim one.
 *
 * Bounds: concurrent handshakes, handshake duration, the time to receive headers (slowloris, also
 * the keep-alive idle time), the time to receive a whole request body, the header size, and the
 * drain on shutdown.
 * @module
 */
import https from "node:https";
import type http from "node:http";
import type net from "node:net";
import type tls from "node:tls";
import { type Logger, nullLogger } from "../../common/log.ts";
import {
  HANDSHAKE_TIMEOUT_MS,
  MAX_CONCURRENT_HANDSHAKES,
  type SpiffeId,
  spiffeIdFromSans,
  TLS_MIN_VERSION,
  type TlsMaterial,
  updateSecureContext,
} from "../../common/tls.ts";

/** Time a connection may take to deliver a request's headers, counted from the connection (or
 * the end of the previous response on a keep-alive connection): the slowloris bound. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Time from a request's headers to the last byte of its body. */
export const REQUEST_BODY_TIMEOUT_MS = 30_000;
/** Largest request head (request line plus headers) accepted; larger ones are cut. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Bound on {@linkcode ApiHttpsServer.shutdown}'s wait for in-flight requests. */
export const DRAIN_TIMEOUT_MS = 5_000;

/** Who is calling, as the TLS layer established it. */
export interface ApiConnInfo {
  /** The verified SPIFFE id of the client certificate, or null when none was presented. */
  readonly peer: SpiffeId | null;
  /** The client's address. */
  readonly remoteAddr: { readonly hostname: string; readonly port: number };
}

/** The request handler of {@linkcode serveApiHttps}. */
export type ApiHandler = (req: Request, info: ApiConnInfo) => Response | Promise<Response>;

/** Why a connection was cut before any HTTP. */
export type ApiRefusalReason =
  | "handshake_limit"
  | "handshake_timeout"
  | "handshake_failed"
  | "untrusted_certificate"
  | "no_spiffe_id"
  | "wrong_trust_domain"
  | "revoked"
  | "headers_timeout"
  | "body_timeout";

/** Options of {@linkcode serveApiHttps}. */
export interface ApiHttpsOptions {
  /** Address to bind. */
  hostname: string;
  /** Port to bind; 0 picks a free one ({@linkcode ApiHttpsServer.port} tells which). */
  port: number;
  /** This node's certificate, key and the trust bundle that client certificates must chain to. */
  material: TlsMaterial;
  /** Answers each request. */
  handler: ApiHandler;
  /** Client certificates must name this trust domain. @default any domain the bundle signs */
  trustDomain?: string;
  /** True for revoked SPIFFE ids; checked at the handshake and again on every request. */
  isRevoked?: (spiffeId: string) => boolean;
  /** Handshakes in progress at once; connections beyond it are closed. @default MAX_CONCURRENT_HANDSHAKES */
  maxConcurrentHandshakes?: number;
  /** Bound on one TLS handshake. @default HANDSHAKE_TIMEOUT_MS */
  handshakeTimeoutMs?: number;
  /** Bound on receiving a request's headers (and on keep-alive idleness). @default HEADERS_TIMEOUT_MS */
  headersTimeoutMs?: number;
  /** Bound on receiving a request's body after its headers. @default REQUEST_BODY_TIMEOUT_MS */
  requestTimeoutMs?: number;
  /** Largest request head. @default MAX_HEADER_BYTES */
  maxHeaderBytes?: number;
  /** Where refusals (debug: a scan must not flood the log) and handler failures go. @default nullLogger */
  logger?: Logger;
}

/** Counters of an {@linkcode ApiHttpsServer}, live. */
export interface ApiHttpsStats {
  /** Handshakes in progress. */
  handshakesInFlight: number;
  /** Connections admitted after the handshake. */
  accepted: number;
  /** Requests being answered. */
  requestsInFlight: number;
  /** Connections cut, by reason. */
  refused: Record<ApiRefusalReason, number>;
}

/** A running HTTPS API server. */
export interface ApiHttpsServer {
  /** The bound address. */
  readonly hostname: string;
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  /** Counters. */
  readonly stats: ApiHttpsStats;
  /** Replaces certificate, key and trust bundle for new handshakes; open connections stay. */
  updateMaterial(material: TlsMaterial): void;
  /**
   * Stops accepting, closes idle connections, waits for in-flight requests up to `drainMs`, then
   * cuts whatever is left.
   */
  shutdown(drainMs?: number): Promise<void>;
}

interface _Conn {
  readonly peer: SpiffeId | null;
  readonly remoteAddr: { hostname: string; port: number };
  inFlight: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface _Handshake {
  readonly raw: net.Socket;
  readonly timer: ReturnType<typeof setTimeout>;
  done: boolean;
}

const _NO_BODY_METHODS = new Set(["GET", "HEAD"]);
const _HOST = /^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/** Starts the HTTPS API server; resolves once it listens. */
export async function serveApiHttps(opts: ApiHttpsOptions): Promise<ApiHttpsServer> {
  const log = opts.logger ?? nullLogger;
  const maxHandshakes = opts.maxConcurrentHandshakes ?? MAX_CONCURRENT_HANDSHAKES;
  const handshakeMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const headersMs = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const bodyMs = opts.requestTimeoutMs ?? REQUEST_BODY_TIMEOUT_MS;
  const stats: ApiHttpsStats = {
    handshakesInFlight: 0,
    accepted: 0,
    requestsInFlight: 0,
    refused: {
      handshake_limit: 0,
      handshake_timeout: 0,
      handshake_failed: 0,
      untrusted_certificate: 0,
      no_spiffe_id: 0,
      wrong_trust_domain: 0,
      revoked: 0,
      headers_timeout: 0,
      body_timeout: 0,
    },
  };
  const server = https.createServer({
    cert: opts.material.certPem,
    key: opts.material.keyPem,
    ca: opts.material.caPem,
    // Ask for a certificate but let clients without one finish the handshake: operators have
    // none. Verification of the ones presented is ours to enforce, below.
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: TLS_MIN_VERSION,
    maxHeaderSize: opts.maxHeaderBytes ?? MAX_HEADER_BYTES,
  });
  // Our own timers do this job (Deno's node:http may or may not honour these); a server-side
  // request timeout would also cut blocking queries, which legitimately wait for minutes.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 0;
  server.timeout = 0;

  const conns = new Map<tls.TLSSocket, _Conn>();
  // Keyed by peer address: the raw socket of `connection` and the TLS socket of
  // `secureConnection` are different objects.
  const handshakes = new Map<string, _Handshake>();
  let closing = false;
  let drained: (() => void) | null = null;

  const refuse = (reason: ApiRefusalReason, fields: Record<string, string | number>) => {
    stats.refused[reason]++;
    log.debug("api connection refused", { reason, ...fields });
  };
  const endHandshake = (k: string) => {
    const h = handshakes.get(k);
    if (!h || h.done) return;
    h.done = true;
    clearTimeout(h.timer);
    handshakes.delete(k);
    stats.handshakesInFlight--;
  };
  const checkDrained = () => {
    if (closing && drained && stats.requestsInFlight === 0 && conns.size === 0) drained();
  };

  server.on("connection", (raw: net.Socket) => {
    const k = `${raw.remoteAddress}:${raw.remotePort}`;
    if (closing || stats.handshakesInFlight >= maxHandshakes) {
      refuse("handshake_limit", { peer: k });
      raw.destroy();
      return;
    }
    stats.handshakesInFlight++;
    const h: _Handshake = {
      raw,
      done: false,
      timer: setTimeout(() => {
        refuse("handshake_timeout", { peer: k });
        endHandshake(k);
        raw.destroy();
      }, handshakeMs),
    };
    handshakes.set(k, h);
    raw.once("close", () => {
      if (handshakes.get(k) === h && !h.done) {
        refuse("handshake_failed", { peer: k });
        endHandshake(k);
      }
    });
  });

  server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
    const k = `${socket.remoteAddress}:${socket.remotePort}`;
    const h = handshakes.get(k);
    if (h) {
      refuse("handshake_failed", { peer: k, error: err.message });
      endHandshake(k);
      h.raw.destroy();
    }
    socket.destroy();
  });

  const armHeaders = (socket: tls.TLSSocket, c: _Conn) => {
    clearTimeout(c.timer);
    c.timer = setTimeout(() => {
      if (c.inFlight > 0) return;
      refuse("headers_timeout", { peer: `${c.remoteAddr.hostname}:${c.remoteAddr.port}` });
      socket.destroy();
    }, headersMs);
  };

  // Prepended so that a refused connection is destroyed before the HTTP layer reads a byte.
  server.prependListener("secureConnection", (socket: tls.TLSSocket) => {
    const k = `${socket.remoteAddress}:${socket.remotePort}`;
    endHandshake(k);
    const cert = socket.getPeerCertificate();
    const presented = cert !== null && cert !== undefined && Object.keys(cert).length > 0;
    let peer: SpiffeId | null = null;
    if (presented) {
      if (!socket.authorized) {
        refuse("untrusted_certificate", {
          peer: k,
          error: String(socket.authorizationError ?? "unknown"),
        });
        socket.destroy();
        return;
      }
      peer = spiffeIdFromSans(cert.subjectaltname);
      if (!peer) {
        refuse("no_spiffe_id", { peer: k });
        socket.destroy();
        return;
      }
      if (opts.trustDomain !== undefined && peer.trustDomain !== opts.trustDomain) {
        refuse("wrong_trust_domain", { peer: k, spiffe_id: peer.uri });
        socket.destroy();
        return;
      }
      if (opts.isRevoked?.(peer.uri)) {
        refuse("revoked", { peer: k, spiffe_id: peer.uri });
        socket.destroy();
        return;
      }
    }
    if (closing) {
      socket.destroy();
      return;
    }
    stats.accepted++;
    const c: _Conn = {
      peer,
      remoteAddr: { hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 },
      inFlight: 0,
      timer: undefined,
    };
    conns.set(socket, c);
    armHeaders(socket, c);
    socket.once("close", () => {
      clearTimeout(c.timer);
      conns.delete(socket);
      checkDrained();
    });
  });

  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket as tls.TLSSocket;
    const c = conns.get(socket);
    if (!c) {
      // Not admitted (refused or shutting down): never answer.
      socket.destroy();
      return;
    }
    // Revocation reaches connections that were open before it, at their next request.
    if (c.peer && opts.isRevoked?.(c.peer.uri)) {
      refuse("revoked", { peer: `${c.remoteAddr.hostname}:${c.remoteAddr.port}` });
      socket.destroy();
      return;
    }
    clearTimeout(c.timer);
    c.inFlight++;
    stats.requestsInFlight++;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      c.inFlight--;
      stats.requestsInFlight--;
      if (closing) socket.destroy();
      else if (c.inFlight === 0) armHeaders(socket, c);
      checkDrained();
    };
    res.once("finish", done);
    res.once("close", done);
    _serve(
      req,
      res,
      c,
      opts.handler,
      bodyMs,
      () => {
        refuse("body_timeout", { peer: `${c.remoteAddr.hostname}:${c.remoteAddr.port}` });
        socket.destroy();
      },
      () => closing,
      log,
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;

  return {
    hostname: addr.address,
    port: addr.port,
    stats,
    updateMaterial(material) {
      updateSecureContext(server, material);
    },
    async shutdown(drainMs = DRAIN_TIMEOUT_MS) {
      closing = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const h of handshakes.values()) h.raw.destroy();
      for (const [socket, c] of conns) if (c.inFlight === 0) socket.destroy();
      const all = new Promise<void>((r) => {
        drained = r;
      });
      checkDrained();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([all, new Promise<void>((r) => timer = setTimeout(r, drainMs))]);
      clearTimeout(timer);
      for (const socket of conns.keys()) socket.destroy();
      await closed;
    },
  };
}

/** Bridges one node request to the Web handler and its Response back. */
async function _serve(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  c: _Conn,
  handler: ApiHandler,
  bodyMs: number,
  onBodyTimeout: () => void,
  closing: () => boolean,
  log: Logger,
): Promise<void> {
  const ac = new AbortController();
  // The handler's signal follows the client: a blocking query stops waiting when it leaves.
  res.once("close", () => {
    if (!res.writableFinished) ac.abort();
  });
  let request: Request;
  let bodyComplete = true;
  try {
    const url = req.url ?? "/";
    if (!url.startsWith("/")) throw new TypeError(`request target ${url.slice(0, 64)}`);
    const host = req.headers.host;
    const base = host !== undefined && _HOST.test(host) ? `https://${host}` : "https://localhost";
    const headers = new Headers();
    const raw = req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
    const method = req.method ?? "GET";
    const hasBody = req.headers["transfer-encoding"] !== undefined ||
      (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");
    let body: ReadableStream<Uint8Array> | null = null;
    if (hasBody && !_NO_BODY_METHODS.has(method)) {
      bodyComplete = false;
      const timer = setTimeout(onBodyTimeout, bodyMs);
      req.once("end", () => {
        bodyComplete = true;
        clearTimeout(timer);
      });
      res.once("close", () => clearTimeout(timer));
      body = _bodyStream(req);
    } else {
      req.resume();
    }
    request = new Request(base + url, {
      method,
      headers,
      body,
      signal: ac.signal,
      // Needed for a streamed request body.
      duplex: "half",
    } as RequestInit);
  } catch (e) {
    res.writeHead(400, { "content-type": "application/json", connection: "close" });
    res.end(JSON.stringify({
      error: {
        code: "invalid_request",
        message: `malformed request: ${(e as Error).message}`,
        details: {},
      },
    }));
    return;
  }
  let response: Response;
  try {
    response = await handler(request, { peer: c.peer, remoteAddr: c.remoteAddr });
  } catch (e) {
    log.error("api handler failed", { method: request.method, err: e as Error });
    response = Response.json({
      error: { code: "internal", message: "internal error; see the control node log", details: {} },
    }, { status: 500 });
  }
  if (res.destroyed) {
    await response.body?.cancel().catch(() => {});
    return;
  }
  await _writeResponse(res, response, !bodyComplete || closing());
}

/** A request body as a Web stream with backpressure onto the socket. */
function _bodyStream(req: http.IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      req.on("data", (chunk: Uint8Array) => {
        ctrl.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((ctrl.desiredSize ?? 0) <= 0) req.pause();
      });
      req.once("end", () => {
        try {
          ctrl.close();
        } catch { /* already cancelled */ }
      });
      req.once("error", (e) => {
        try {
          ctrl.error(e);
        } catch { /* already cancelled */ }
      });
      req.pause();
    },
    pull() {
      req.resume();
    },
    cancel() {
      // The handler refused the body (e.g. 413): stop reading; the connection closes after the
      // response, since the rest of the body is still on the wire.
      req.pause();
    },
  }, { highWaterMark: 4 });
}

/** Writes a Web Response to a node response, streaming the body with backpressure. */
async function _writeResponse(
  res: http.ServerResponse,
  response: Response,
  closeAfter: boolean,
): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of response.headers) {
    if (k === "set-cookie") {
      const prev = headers[k];
      headers[k] = prev === undefined ? [v] : [...(Array.isArray(prev) ? prev : [prev]), v];
    } else headers[k] = v;
  }
  if (closeAfter) headers["connection"] = "close";
  const body = response.body;
  if (!body) {
    res.writeHead(response.status, headers);
    res.end();
    if (closeAfter) res.once("finish", () => res.socket?.end());
    return;
  }
  if (closeAfter) res.once("finish", () => res.socket?.end());
  const reader = body.getReader();
  const onClose = () => reader.cancel().catch(() => {});
  res.once("close", onClose);
  try {
    const first = await reader.read();
    if (first.done) {
      res.writeHead(response.status, headers);
      res.end();
      return;
    }
    const second = await reader.read();
    if (second.done) {
      // The common case (a JSON answer in one chunk): one write with a length, no chunking.
      headers["content-length"] = String(first.value.byteLength);
      res.writeHead(response.status, headers);
      res.end(first.value);
      return;
    }
    res.writeHead(response.status, headers);
    let chunk: ReadableStreamReadResult<Uint8Array> = second;
    res.write(first.value);
    while (!chunk.done) {
      if (!res.write(chunk.value)) {
        await new Promise<void>((r) => {
          res.once("drain", r);
          res.once("close", r);
        });
        if (res.destroyed) return;
      }
      chunk = await reader.read();
    }
    res.end();
  } catch {
    // The body stream failed or the client left: nothing sensible can be sent any more.
    res.destroy();
  } finally {
    res.off("close", onClose);
  }
}
