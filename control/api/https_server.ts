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
 * the keep-alive idle time), the time to receive a whole request body, the header size, the size
 * of a body collected before the handler runs, and the drain on shutdown. The header and body
 * times are enforced by one periodic sweep per server rather than timers per request.
 *
 * The bridge is on every API request's path, so it avoids what cost most there: small bodies
 * reach the handler as bytes (no Web stream), headers go to `Request` as pairs (a `Headers`
 * init is copied through the slow generic path), JSON answers are read whole and written with a
 * length, and only GET/HEAD requests get an abort signal (blocking queries are what need one).
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
} from "../../common/tls/mod.ts";

/** Time a connection may take to deliver a request's headers, counted from the connection (or
 * the end of the previous response on a keep-alive connection): the slowloris bound. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Time from a request's headers to the last byte of its body. */
export const REQUEST_BODY_TIMEOUT_MS = 30_000;
/** Largest request head (request line plus headers) accepted; larger ones are cut. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Bound on {@linkcode ApiHttpsServer.shutdown}'s wait for in-flight requests. */
export const DRAIN_TIMEOUT_MS = 5_000;
/**
 * Request bodies that declare a Content-Length up to this size are read whole before the
 * handler runs and handed over as bytes: cheaper than a Web stream for the small JSON bodies of
 * writes. Larger or chunked bodies are streamed, so the handler's size limit (413) still stops
 * them early.
 */
export const BUFFERED_BODY_MAX_BYTES = 16 * 1024;
/**
 * Connections open at once (handshaking or established); more are closed at once. Each may hold
 * a buffered body before any credential is checked, so this bounds that memory too (about
 * 128 MiB at {@linkcode BUFFERED_BODY_MAX_BYTES}). A fleet's proxies each keep about one.
 */
export const MAX_API_CONNECTIONS = 8192;
/** Requests one connection may have in flight (pipelined); one more closes the connection. */
export const MAX_PIPELINED_REQUESTS = 8;
/**
 * Connections open at once from one client address: one host cannot take every slot. Counts
 * connections without a verified client certificate (operators, scanners) and every handshake
 * in progress; proxies with their mesh certificate count only against the total.
 */
export const MAX_API_CONNECTIONS_PER_ADDRESS = 256;
/**
 * Longest interval of the sweep that enforces the header and body timeouts. One sweep per
 * server instead of a timer per request; a timeout fires up to one sweep late (the sweep runs
 * at a quarter of the shortest timeout when that is shorter).
 */
export const TIMEOUT_SWEEP_MAX_MS = 1_000;

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
  | "connection_limit"
  | "pipeline_limit"
  | "address_limit"
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
  /** Connections open at once. @default MAX_API_CONNECTIONS */
  maxConnections?: number;
  /** Connections open at once from one address. @default MAX_API_CONNECTIONS_PER_ADDRESS */
  maxConnectionsPerAddress?: number;
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
  readonly socket: tls.TLSSocket;
  readonly peer: SpiffeId | null;
  readonly remoteAddr: { hostname: string; port: number };
  /** The same facts as handed to every handler call (one object per connection). */
  readonly info: ApiConnInfo;
  inFlight: number;
  /** When the connection became idle (no request in flight), ms (performance.now()). */
  idleSince: number;
  /** Requests on this connection still receiving their bodies. */
  bodiesPending: number;
  /** Earliest deadline of a pending body, ms (performance.now()); Infinity when none. */
  bodyDeadline: number;
}

interface _Handshake {
  readonly raw: net.Socket;
  readonly timer: ReturnType<typeof setTimeout>;
  done: boolean;
  /** Gives the connection's per-address slot back (once). */
  readonly releaseAddress: () => void;
}

const _NO_BODY_METHODS = new Set(["GET", "HEAD"]);
const _HOST = /^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/** Starts the HTTPS API server; resolves once it listens. */
export async function serveApiHttps(opts: ApiHttpsOptions): Promise<ApiHttpsServer> {
  const log = opts.logger ?? nullLogger;
  const maxHandshakes = opts.maxConcurrentHandshakes ?? MAX_CONCURRENT_HANDSHAKES;
  const maxConns = opts.maxConnections ?? MAX_API_CONNECTIONS;
  const maxPerAddress = opts.maxConnectionsPerAddress ?? MAX_API_CONNECTIONS_PER_ADDRESS;
  const handshakeMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const headersMs = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const bodyMs = opts.requestTimeoutMs ?? REQUEST_BODY_TIMEOUT_MS;
  const stats: ApiHttpsStats = {
    handshakesInFlight: 0,
    accepted: 0,
    requestsInFlight: 0,
    refused: {
      connection_limit: 0,
      pipeline_limit: 0,
      address_limit: 0,
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
  /** Open raw connections, in all and by client address. */
  let open = 0;
  const perAddress = new Map<string, number>();
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
    const addr = raw.remoteAddress ?? "";
    const fromAddr = perAddress.get(addr) ?? 0;
    if (open >= maxConns || fromAddr >= maxPerAddress) {
      refuse(open >= maxConns ? "connection_limit" : "address_limit", { peer: k });
      raw.destroy();
      return;
    }
    open++;
    perAddress.set(addr, fromAddr + 1);
    let counted = true;
    const releaseAddress = () => {
      if (!counted) return;
      counted = false;
      const n = (perAddress.get(addr) ?? 1) - 1;
      if (n > 0) perAddress.set(addr, n);
      else perAddress.delete(addr);
    };
    raw.once("close", () => {
      open--;
      releaseAddress();
    });
    if (closing || stats.handshakesInFlight >= maxHandshakes) {
      refuse("handshake_limit", { peer: k });
      raw.destroy();
      return;
    }
    stats.handshakesInFlight++;
    const h: _Handshake = {
      raw,
      done: false,
      releaseAddress,
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

  // The header and body bounds: one sweep over the connections instead of a timer per request.
  const sweepMs = Math.max(1, Math.min(TIMEOUT_SWEEP_MAX_MS, headersMs / 4, bodyMs / 4));
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of conns.values()) {
      const peer = `${c.remoteAddr.hostname}:${c.remoteAddr.port}`;
      if (c.inFlight === 0 && now - c.idleSince >= headersMs) {
        refuse("headers_timeout", { peer });
        c.socket.destroy();
      } else if (c.bodiesPending > 0 && now >= c.bodyDeadline) {
        refuse("body_timeout", { peer });
        c.socket.destroy();
      }
    }
  }, sweepMs);

  // Prepended so that a refused connection is destroyed before the HTTP layer reads a byte.
  server.prependListener("secureConnection", (socket: tls.TLSSocket) => {
    const k = `${socket.remoteAddress}:${socket.remotePort}`;
    const handshake = handshakes.get(k);
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
    // A verified mesh certificate leaves the per-address count: the cap is there so one
    // anonymous host cannot take every slot, and it would otherwise lock out a fleet's proxies
    // behind one NAT address (each keeps a connection). The total cap still bounds them, and a
    // certificate can be revoked.
    if (peer) handshake?.releaseAddress();
    stats.accepted++;
    const remoteAddr = { hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    const c: _Conn = {
      socket,
      peer,
      remoteAddr,
      info: { peer, remoteAddr },
      inFlight: 0,
      idleSince: performance.now(),
      bodiesPending: 0,
      bodyDeadline: Infinity,
    };
    conns.set(socket, c);
    socket.once("close", () => {
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
    // Deno's node:https hands every pipelined request to the handler at once and keeps reading
    // (node:tls does not push back): a client that pipelines without reading answers could make
    // the node hold any number of requests and responses. A few in flight is all HTTP/1.1 needs.
    if (c.inFlight >= MAX_PIPELINED_REQUESTS) {
      refuse("pipeline_limit", { peer: `${c.remoteAddr.hostname}:${c.remoteAddr.port}` });
      socket.destroy();
      return;
    }
    c.inFlight++;
    stats.requestsInFlight++;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      c.inFlight--;
      stats.requestsInFlight--;
      if (closing) socket.destroy();
      else if (c.inFlight === 0) c.idleSince = performance.now();
      checkDrained();
    };
    res.once("finish", done);
    res.once("close", done);
    _serve(req, res, c, opts.handler, bodyMs, () => closing, log);
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.hostname, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    clearInterval(sweep);
    throw e;
  }
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
      clearInterval(sweep);
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

/** Answers a request that could not be turned into a Web Request, and closes. */
function _malformed(res: http.ServerResponse, e: unknown): void {
  res.writeHead(400, { "content-type": "application/json", connection: "close" });
  res.end(JSON.stringify({
    error: {
      code: "invalid_request",
      message: `malformed request: ${(e as Error).message}`,
      details: {},
    },
  }));
}

/**
 * Bridges one node request to the Web handler and its Response back. Small bodies with a
 * declared length are collected first ({@linkcode BUFFERED_BODY_MAX_BYTES}); larger ones stream.
 */
function _serve(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  c: _Conn,
  handler: ApiHandler,
  bodyMs: number,
  closing: () => boolean,
  log: Logger,
): void {
  const method = req.method ?? "GET";
  const te = req.headers["transfer-encoding"];
  const cl = req.headers["content-length"];
  const hasBody = te !== undefined || (cl !== undefined && cl !== "0");
  if (!hasBody || _NO_BODY_METHODS.has(method)) {
    req.resume();
    _dispatchOrCut(req, res, c, handler, method, null, true, closing, log);
    return;
  }
  c.bodiesPending++;
  c.bodyDeadline = Math.min(c.bodyDeadline, performance.now() + bodyMs);
  let pending = true;
  const bodyDone = () => {
    if (!pending) return;
    pending = false;
    if (--c.bodiesPending === 0) c.bodyDeadline = Infinity;
  };
  res.once("close", bodyDone);
  const declared = te === undefined && cl !== undefined && /^\d{1,9}$/.test(cl) ? Number(cl) : -1;
  if (declared < 0 || declared > BUFFERED_BODY_MAX_BYTES) {
    req.once("end", bodyDone);
    _dispatchOrCut(req, res, c, handler, method, _bodyStream(req), false, closing, log);
    return;
  }
  // The server never delivers more than the declared length, so this buffer is bounded.
  const chunks: Uint8Array[] = [];
  let total = 0;
  req.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    total += chunk.byteLength;
  });
  req.once("end", () => {
    bodyDone();
    let body: Uint8Array<ArrayBuffer>;
    if (chunks.length === 1 && chunks[0]!.byteLength === chunks[0]!.buffer.byteLength) {
      body = chunks[0] as Uint8Array<ArrayBuffer>;
    } else {
      body = new Uint8Array(total);
      let at = 0;
      for (const ch of chunks) {
        body.set(ch, at);
        at += ch.byteLength;
      }
    }
    _dispatchOrCut(req, res, c, handler, method, body, true, closing, log);
  });
}

/** {@linkcode _dispatch}, cutting the connection if writing the answer itself fails. */
function _dispatchOrCut(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  c: _Conn,
  handler: ApiHandler,
  method: string,
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null,
  bodyComplete: boolean,
  closing: () => boolean,
  log: Logger,
): void {
  _dispatch(req, res, c, handler, method, body, bodyComplete, closing, log).catch((e) => {
    // E.g. a header value node refuses: nothing sensible can be sent any more.
    log.error("api response failed", { method, err: e as Error });
    res.destroy();
  });
}

/** Builds the Web Request, runs the handler and writes its answer. */
async function _dispatch(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  c: _Conn,
  handler: ApiHandler,
  method: string,
  body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null,
  bodyComplete: boolean,
  closing: () => boolean,
  log: Logger,
): Promise<void> {
  if (res.destroyed) return;
  let request: Request;
  try {
    const url = req.url ?? "/";
    if (!url.startsWith("/")) throw new TypeError(`request target ${url.slice(0, 64)}`);
    const host = req.headers.host;
    const base = host !== undefined && _HOST.test(host) ? `https://${host}` : "https://localhost";
    // Header pairs, not a Headers object: Request copies a Headers init through the generic
    // iterable conversion, which cost three times the rest of the construction.
    const raw = req.rawHeaders;
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i]!, raw[i + 1]!]);
    const init: RequestInit & { duplex?: "half" } = { method, headers, body };
    // Needed for a streamed request body.
    if (body instanceof ReadableStream) init.duplex = "half";
    if (_NO_BODY_METHODS.has(method)) {
      // The handler's signal follows the client: a blocking query stops waiting when it
      // leaves. Writes have nothing to stop once received (their commit cannot be taken back),
      // so they go without the controller.
      const ac = new AbortController();
      res.once("close", () => {
        if (!res.writableFinished) ac.abort();
      });
      init.signal = ac.signal;
    }
    request = new Request(base + url, init);
  } catch (e) {
    _malformed(res, e);
    return;
  }
  let response: Response;
  try {
    response = await handler(request, c.info);
  } catch (e) {
    log.error("api handler failed", { method, err: e as Error });
    response = Response.json({
      error: { code: "internal", message: "internal error; see the control node log", details: {} },
    }, { status: 500 });
  }
  if (res.destroyed) {
    await response.body?.cancel().catch(() => {});
    return;
  }
  // A body the handler did not read (e.g. 413) is still on the wire: close after answering.
  const incomplete = !bodyComplete && !req.complete;
  await _writeResponse(res, response, incomplete || closing());
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

/** Content types whose bodies are whole values, collected in one piece before writing. */
const _WHOLE_BODY = /^application\/(?:[a-z0-9.+-]+\+)?json\b/i;

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
  if (closeAfter) {
    headers["connection"] = "close";
    res.once("finish", () => res.socket?.end());
  }
  const body = response.body;
  if (!body) {
    res.writeHead(response.status, headers);
    res.end();
    return;
  }
  if (_WHOLE_BODY.test(response.headers.get("content-type") ?? "")) {
    // JSON answers are complete values (the API's only kind but metrics): one read of the
    // whole body and one write with a length, no stream reader.
    let bytes: Uint8Array;
    try {
      bytes = await response.bytes();
    } catch {
      res.destroy();
      return;
    }
    if (res.destroyed) return;
    headers["content-length"] = String(bytes.byteLength);
    res.writeHead(response.status, headers);
    res.end(bytes);
    return;
  }
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
      // One chunk: one write with a length, no chunking.
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
