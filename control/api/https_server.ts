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
 * Each request is handed to the Web handler by the bridge in `https_bridge.ts`.
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
import {
  type ApiConnInfo,
  type ApiHandler,
  type BridgeConn,
  serveRequest,
} from "./https_bridge.ts";

/** A request the server may let answer itself before the Web handler; see `intercept`. */
export type ApiIntercept = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  info: ApiConnInfo,
) => boolean;

export { type ApiConnInfo, type ApiHandler, BUFFERED_BODY_MAX_BYTES } from "./https_bridge.ts";

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
 * Connections open at once (handshaking or established); more are closed at once. Each may hold
 * a buffered body before any credential is checked, so this bounds that memory too (about
 * 128 MiB at `BUFFERED_BODY_MAX_BYTES`). A fleet's proxies each keep about one.
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
  | "distrusted"
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
  /**
   * Sees each admitted request first and may answer it itself on the node objects (true), as
   * the lean path of proxies' catalog watches does; false hands it to `handler`. @default none
   */
  intercept?: ApiIntercept;
  /** Client certificates must name this trust domain. @default any domain the bundle signs */
  trustDomain?: string;
  /** True for revoked SPIFFE ids; checked at the handshake and again on every request. */
  isRevoked?: (spiffeId: string) => boolean;
  /**
   * True when a distrusted intermediate signed the client's leaf (DER); checked at the
   * handshake and again on every request. @default never
   */
  isDistrusted?: (leafDer: Uint8Array) => boolean;
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

interface _Conn extends BridgeConn {
  readonly socket: tls.TLSSocket;
  readonly peer: SpiffeId | null;
  /** The client's leaf (DER), re-checked against distrusted intermediates on each request. */
  readonly leaf?: Uint8Array;
  readonly remoteAddr: { hostname: string; port: number };
  inFlight: number;
  /** When the connection became idle (no request in flight), ms (performance.now()). */
  idleSince: number;
}

interface _Handshake {
  readonly raw: net.Socket;
  readonly timer: ReturnType<typeof setTimeout>;
  done: boolean;
  /** Gives the connection's per-address slot back (once). */
  readonly releaseAddress: () => void;
}

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
      distrusted: 0,
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
    let leaf: Uint8Array | undefined;
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
      if (opts.isDistrusted?.(cert.raw)) {
        refuse("distrusted", { peer: k, spiffe_id: peer.uri });
        socket.destroy();
        return;
      }
      leaf = cert.raw;
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
      ...(leaf !== undefined ? { leaf } : {}),
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
    // So does distrusting the intermediate that signed the client's certificate.
    if (c.leaf !== undefined && opts.isDistrusted?.(c.leaf)) {
      refuse("distrusted", { peer: `${c.remoteAddr.hostname}:${c.remoteAddr.port}` });
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
    if (opts.intercept?.(req, res, c.info)) return;
    serveRequest(req, res, c, opts.handler, bodyMs, () => closing, log);
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
