/**
 * The mutual-TLS server on `node:tls` (the only TLS server in Deno that can require client
 * certificates), and the TLS constants and material type every mTLS hop shares.
 *
 * - {@linkcode createMtlsServer}: TLS 1.3 only, client certificate required and verified against
 *   the trust bundle, a bound on concurrent handshakes, a handshake timeout, the peer's SPIFFE id
 *   handed to `onConnection`, an optional revocation hook.
 * - {@linkcode updateSecureContext}: swaps certificate, key and bundle of a running server; new
 *   handshakes use the new material, established connections are not touched.
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import type { Logger } from "../log.ts";
import { nullLogger } from "../log.ts";
import { type SpiffeId, spiffeIdFromSans } from "./spiffe.ts";

/** Most TLS handshakes in progress at once per server; connections beyond it are closed. */
export const MAX_CONCURRENT_HANDSHAKES = 256;
/**
 * Handshakes in progress at once from one client address: silent connections from one host
 * cannot take every slot (a mesh peer dials one or a few sessions at a time).
 */
export const MAX_HANDSHAKES_PER_ADDRESS = 32;
/** Longest single wait for a peer certificate's expiry (timers overflow past 2^31 - 1 ms). */
const MAX_EXPIRY_TIMER_MS = 2 ** 31 - 1;
/** A connection that has not finished its handshake after this long is closed (slowloris). */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/** The only protocol version spoken: TLS 1.3 (no renegotiation, encrypted certificates). */
export const TLS_MIN_VERSION = "TLSv1.3";

/** Certificate, key and trust bundle of one endpoint, all PEM. */
export interface TlsMaterial {
  /** Leaf certificate (optionally followed by intermediates). */
  readonly certPem: string;
  /** PKCS#8 private key. Secret: never log it. */
  readonly keyPem: string;
  /** Trusted roots, concatenated; two during a CA rotation. */
  readonly caPem: string;
}

/** What the server learned about a verified peer. */
export interface PeerInfo {
  /** The peer's SPIFFE identity (its single URI SAN). */
  readonly spiffeId: SpiffeId;
  /** Peer certificate expiry, ms since the epoch. */
  readonly notAfter: number;
  /** Peer address. */
  readonly remoteAddress: string;
  /** Peer port. */
  readonly remotePort: number;
}

/** Why a connection was closed before `onConnection`. */
export type RefusalReason =
  | "handshake_limit"
  | "address_limit"
  | "handshake_timeout"
  | "handshake_failed"
  | "no_spiffe_id"
  | "wrong_trust_domain"
  | "revoked"
  | "distrusted"
  | "peer_refused";

interface _Pending {
  raw: net.Socket;
  timer: ReturnType<typeof setTimeout>;
  finish: (outcome: "secure" | "timeout" | "failed") => void;
}

/** Options of {@linkcode createMtlsServer}. */
export interface MtlsServerOptions {
  /** Server certificate, PEM. */
  cert: string;
  /** Server private key, PKCS#8 PEM. */
  key: string;
  /** Trusted roots for client certificates, PEM. */
  ca: string;
  /** Called for every connection whose client certificate verified and passed every check. */
  onConnection: (socket: tls.TLSSocket, peer: PeerInfo) => void;
  /** Refuses peers whose SPIFFE id this returns true for (the CA's revocation list). */
  isRevoked?: (spiffeId: string) => boolean;
  /** Refuses peers whose leaf (DER) a distrusted intermediate signed (`distrust.ts`). */
  isDistrusted?: (leafDer: Uint8Array) => boolean;
  /** Only peers of this trust domain are accepted. @default any domain the bundle signs */
  trustDomain?: string;
  /** Extra admission check, e.g. "control identities only" on the Raft port. */
  acceptPeer?: (peer: PeerInfo) => boolean;
  /** Bound on handshakes in progress. @default MAX_CONCURRENT_HANDSHAKES */
  maxConcurrentHandshakes?: number;
  /** Handshakes in progress at once from one address. @default MAX_HANDSHAKES_PER_ADDRESS */
  maxHandshakesPerAddress?: number;
  /** Bound on one handshake's duration. @default HANDSHAKE_TIMEOUT_MS */
  handshakeTimeoutMs?: number;
  /** Where refusals are logged (at debug: a scan should not flood the log). @default nullLogger */
  logger?: Logger;
  /**
   * Keep our side writable after the peer's FIN, so tunnels can half-close as over TCP.
   * @default false
   */
  allowHalfOpen?: boolean;
  /**
   * Other certificates, chosen by the client's SNI server name (a proxy fronting several
   * services presents the one the caller asked for). Unknown or absent names get `cert`/`key`.
   * @default none
   */
  sni?: Readonly<Record<string, TlsMaterial>>;
  /**
   * ALPN protocols offered, in order of preference; a client that offers none of them still
   * connects (with no protocol negotiated). @default none
   */
  alpnProtocols?: readonly string[];
}

/** Counters of an {@linkcode MtlsServer}. */
export interface MtlsServerStats {
  /** Handshakes in progress now. */
  handshakesInFlight: number;
  /** Connections handed to `onConnection`. */
  accepted: number;
  /** Connections closed before `onConnection`, by reason. */
  refused: Record<RefusalReason, number>;
}

/** A running mTLS server. */
export interface MtlsServer {
  /** The underlying `node:tls` server (for `setSecureContext`, events, `maxConnections`). */
  readonly server: tls.Server;
  /** Counters, live. */
  readonly stats: MtlsServerStats;
  /** Starts listening; resolves with the bound port (pass 0 for an ephemeral one). */
  listen(port: number, host: string): Promise<{ port: number; host: string }>;
  /** Replaces certificate, key and bundle for new handshakes. */
  updateMaterial(material: TlsMaterial): void;
  /** Serves `material` to new handshakes naming `serverName` (SNI); null forgets the name. */
  updateSniMaterial(serverName: string, material: TlsMaterial | null): void;
  /** Stops accepting; with `destroyConnections`, also closes connections already accepted. */
  close(opts?: { destroyConnections?: boolean }): Promise<void>;
}

/**
 * Options for a `node:tls` / `node:https` server of the mesh. `requireClientCert: false` still
 * asks for a certificate (so a proxy can present one) but lets clients without one through, for
 * the control API where operators use bearer tokens; the route then decides.
 */
export function serverTlsOptions(
  material: TlsMaterial,
  opts: { requireClientCert?: boolean } = {},
): tls.TlsOptions {
  return {
    cert: material.certPem,
    key: material.keyPem,
    ca: material.caPem,
    requestCert: true,
    rejectUnauthorized: opts.requireClientCert ?? true,
    minVersion: TLS_MIN_VERSION,
  };
}

/**
 * Creates a server that admits only clients with a valid certificate from the trust bundle,
 * carrying exactly one SPIFFE id, not revoked. Anything else is closed before `onConnection`:
 * no certificate, another CA, an expired certificate, plaintext, a stalled handshake.
 */
export function createMtlsServer(opts: MtlsServerOptions): MtlsServer {
  const log = opts.logger ?? nullLogger;
  const maxHandshakes = opts.maxConcurrentHandshakes ?? MAX_CONCURRENT_HANDSHAKES;
  const timeoutMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const stats: MtlsServerStats = {
    handshakesInFlight: 0,
    accepted: 0,
    refused: {
      handshake_limit: 0,
      address_limit: 0,
      handshake_timeout: 0,
      handshake_failed: 0,
      no_spiffe_id: 0,
      wrong_trust_domain: 0,
      revoked: 0,
      distrusted: 0,
      peer_refused: 0,
    },
  };
  // Contexts are built once per material change, not per handshake.
  const sniContexts = new Map<string, tls.SecureContext>();
  for (const [name, m] of Object.entries(opts.sni ?? {})) {
    sniContexts.set(name.toLowerCase(), _secureContext(m));
  }
  const server = tls.createServer({
    ...serverTlsOptions({ certPem: opts.cert, keyPem: opts.key, caPem: opts.ca }),
    allowHalfOpen: opts.allowHalfOpen ?? false,
    ...(opts.alpnProtocols !== undefined ? { ALPNProtocols: [...opts.alpnProtocols] } : {}),
    // Undefined keeps the server's default context (the first certificate).
    SNICallback: (name: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) =>
      cb(null, sniContexts.get(name.toLowerCase())),
  });
  // Deno's node:tls reports its own handshakeTimeout but does not close the socket, so the
  // server keeps its own timer per raw connection, keyed by the peer's address and port.
  const pending = new Map<string, _Pending>();
  const pendingByAddress = new Map<string, number>();
  const maxPerAddress = opts.maxHandshakesPerAddress ?? MAX_HANDSHAKES_PER_ADDRESS;
  const live = new Set<tls.TLSSocket>();
  const refuse = (reason: RefusalReason, fields: Record<string, string | number>) => {
    stats.refused[reason]++;
    log.debug("mtls connection refused", { reason, ...fields });
  };

  server.on("connection", (raw: net.Socket) => {
    const k = `${raw.remoteAddress}:${raw.remotePort}`;
    const addr = raw.remoteAddress ?? "";
    const fromAddr = pendingByAddress.get(addr) ?? 0;
    if (stats.handshakesInFlight >= maxHandshakes || fromAddr >= maxPerAddress) {
      refuse(fromAddr >= maxPerAddress ? "address_limit" : "handshake_limit", { peer: k });
      raw.destroy();
      return;
    }
    stats.handshakesInFlight++;
    pendingByAddress.set(addr, fromAddr + 1);
    let done = false;
    // outcome: "failed" unless the handshake completes ("secure") or our timer fires first.
    const finish = (outcome: "secure" | "timeout" | "failed") => {
      if (done) return;
      done = true;
      stats.handshakesInFlight--;
      const n = (pendingByAddress.get(addr) ?? 1) - 1;
      if (n > 0) pendingByAddress.set(addr, n);
      else pendingByAddress.delete(addr);
      clearTimeout(entry.timer);
      if (pending.get(k) === entry) pending.delete(k);
      if (outcome === "failed") refuse("handshake_failed", { peer: k });
    };
    const entry: _Pending = {
      raw,
      timer: setTimeout(() => {
        refuse("handshake_timeout", { peer: k });
        finish("timeout");
        raw.destroy();
      }, timeoutMs),
      finish,
    };
    pending.set(k, entry);
    raw.once("close", () => finish("failed"));
  });

  server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
    const k = `${socket.remoteAddress}:${socket.remotePort}`;
    const entry = pending.get(k);
    if (entry) {
      log.debug("mtls handshake failed", { peer: k, error: err.message });
      entry.finish("failed");
      entry.raw.destroy();
    }
    socket.destroy();
  });

  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const k = `${socket.remoteAddress}:${socket.remotePort}`;
    pending.get(k)?.finish("secure");
    const peerCert = socket.getPeerCertificate();
    const id = spiffeIdFromSans(peerCert?.subjectaltname);
    const addr = socket.remoteAddress ?? "";
    const port = socket.remotePort ?? 0;
    if (!socket.authorized || !id) {
      refuse(socket.authorized ? "no_spiffe_id" : "handshake_failed", { peer: k });
      socket.destroy();
      return;
    }
    if (opts.trustDomain !== undefined && id.trustDomain !== opts.trustDomain) {
      refuse("wrong_trust_domain", { peer: k, spiffe_id: id.uri });
      socket.destroy();
      return;
    }
    if (opts.isRevoked?.(id.uri)) {
      refuse("revoked", { peer: k, spiffe_id: id.uri });
      socket.destroy();
      return;
    }
    if (opts.isDistrusted !== undefined && opts.isDistrusted(peerCert.raw)) {
      refuse("distrusted", { peer: k, spiffe_id: id.uri });
      socket.destroy();
      return;
    }
    const peer: PeerInfo = {
      spiffeId: id,
      notAfter: Date.parse(peerCert.valid_to),
      remoteAddress: addr,
      remotePort: port,
    };
    if (opts.acceptPeer && !opts.acceptPeer(peer)) {
      refuse("peer_refused", { peer: k, spiffe_id: id.uri });
      socket.destroy();
      return;
    }
    stats.accepted++;
    live.add(socket);
    // A certificate is only good until it expires: so is a connection made with it, however
    // long the peer would like to keep it (a stolen key left to expire, say).
    let expiry: ReturnType<typeof setTimeout> | undefined;
    const closeAtExpiry = () => {
      const left = peer.notAfter - Date.now();
      if (!(left > 0)) {
        log.debug("mtls connection closed: peer certificate expired", {
          peer: k,
          spiffe_id: id.uri,
        });
        socket.destroy();
        return;
      }
      expiry = setTimeout(closeAtExpiry, Math.min(left, MAX_EXPIRY_TIMER_MS));
      Deno.unrefTimer(expiry);
    };
    if (Number.isFinite(peer.notAfter)) closeAtExpiry();
    socket.once("close", () => {
      live.delete(socket);
      clearTimeout(expiry);
    });
    opts.onConnection(socket, peer);
  });

  return {
    server,
    stats,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          const a = server.address() as net.AddressInfo;
          resolve({ port: a.port, host: a.address });
        });
      });
    },
    updateMaterial(material) {
      updateSecureContext(server, material);
    },
    updateSniMaterial(serverName, material) {
      if (material === null) sniContexts.delete(serverName.toLowerCase());
      else sniContexts.set(serverName.toLowerCase(), _secureContext(material));
    },
    close(closeOpts = {}) {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const { raw } of pending.values()) raw.destroy();
        if (closeOpts.destroyConnections) { for (const s of live) s.destroy(); }
      });
    },
  };
}

/**
 * Swaps certificate, key and trust bundle of a running server (`node:tls` or `node:https`):
 * handshakes from now on use them; established connections keep theirs, so nothing drops.
 */
export function updateSecureContext(
  server: tls.Server | MtlsServer,
  material: TlsMaterial,
): void {
  const s = "updateMaterial" in server ? server.server : server;
  s.setSecureContext({
    cert: material.certPem,
    key: material.keyPem,
    ca: material.caPem,
    minVersion: TLS_MIN_VERSION,
  });
}

function _secureContext(m: TlsMaterial): tls.SecureContext {
  return tls.createSecureContext({
    cert: m.certPem,
    key: m.keyPem,
    ca: m.caPem,
    minVersion: TLS_MIN_VERSION,
  });
}

/** The verified SPIFFE id of a connected socket's peer, or null. */
export function peerSpiffeId(socket: tls.TLSSocket): SpiffeId | null {
  if (!socket.authorized) return null;
  return spiffeIdFromSans(socket.getPeerCertificate()?.subjectaltname);
}
