/**
 * Mutual TLS for every hop of the mesh, on `node:tls` (the only TLS server in Deno that can
 * require client certificates), plus the SPIFFE identity helpers that `control/` and `mesh/`
 * share.
 *
 * - {@linkcode createMtlsServer}: TLS 1.3 only, client certificate required and verified against
 *   the trust bundle, a bound on concurrent handshakes, a handshake timeout, the peer's SPIFFE id
 *   handed to `onConnection`, an optional revocation hook.
 * - {@linkcode mtlsConnect}: a client that also checks the server is the SPIFFE identity meant.
 * - {@linkcode updateSecureContext}: swaps certificate, key and bundle of a running server; new
 *   handshakes use the new material, established connections are not touched.
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import type { Logger } from "./log.ts";
import { nullLogger } from "./log.ts";

// ---------------------------------------------------------------------------------------------
// SPIFFE identities

/** What a certificate identifies: a service's proxies or a control node. */
export type Identity =
  | { readonly kind: "service"; readonly service: string }
  | { readonly kind: "control"; readonly node: string };

/** A parsed SPIFFE id of this mesh. */
export type SpiffeId = Identity & { readonly trustDomain: string; readonly uri: string };

/** Longest SPIFFE id accepted (the SPIFFE spec's limit). */
export const SPIFFE_ID_MAX_CHARS = 2048;

const _TRUST_DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const _NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

/** Whether `s` is a valid trust domain ("skein.local"). */
export function isTrustDomain(s: string): boolean {
  return s.length <= 255 && _TRUST_DOMAIN.test(s);
}

/** Whether `s` is a valid service or node name inside a SPIFFE id. */
export function isIdentityName(s: string): boolean {
  return _NAME.test(s);
}

/** The SPIFFE id URI of an identity: `spiffe://<td>/svc/<service>` or `.../control/<node>`. */
export function spiffeIdFor(trustDomain: string, id: Identity): string {
  const name = id.kind === "service" ? id.service : id.node;
  if (!isTrustDomain(trustDomain)) {
    throw new RangeError(`invalid trust domain ${JSON.stringify(trustDomain)}`);
  }
  if (!isIdentityName(name)) {
    throw new RangeError(`invalid ${id.kind} name ${JSON.stringify(name)}`);
  }
  return `spiffe://${trustDomain}/${id.kind === "service" ? "svc" : "control"}/${name}`;
}

/** Parses a SPIFFE id of the skein shape; null for anything else (never throws). */
export function parseSpiffeId(uri: string): SpiffeId | null {
  if (uri.length > SPIFFE_ID_MAX_CHARS || !uri.startsWith("spiffe://")) return null;
  const parts = uri.slice("spiffe://".length).split("/");
  if (parts.length !== 3) return null;
  const [td, kind, name] = parts as [string, string, string];
  if (!isTrustDomain(td) || !isIdentityName(name)) return null;
  if (kind === "svc") return { kind: "service", service: name, trustDomain: td, uri };
  if (kind === "control") return { kind: "control", node: name, trustDomain: td, uri };
  return null;
}

/**
 * The URI SANs of a certificate as `node:tls` reports them (`subjectaltname` is a
 * comma-separated string such as `URI:spiffe://a/svc/b, DNS:x`).
 */
export function uriSans(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  const out: string[] = [];
  for (const part of subjectaltname.split(",")) {
    const p = part.trim();
    if (p.startsWith("URI:")) out.push(p.slice(4));
  }
  return out;
}

/**
 * The single SPIFFE id in a peer certificate's SANs. A certificate carrying several URI SANs
 * is refused (null): the X509-SVID spec allows exactly one, and ambiguity is how confusion
 * attacks start.
 */
export function spiffeIdFromSans(subjectaltname: string | undefined): SpiffeId | null {
  const uris = uriSans(subjectaltname);
  if (uris.length !== 1) return null;
  return parseSpiffeId(uris[0]!);
}

// ---------------------------------------------------------------------------------------------
// PEM and ECDSA keys

/** The one signature algorithm of the mesh CA and its leaves. */
export const EC_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Wraps DER bytes in PEM armour with 64-character lines. */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString(
    "base64",
  );
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Extracts the DER bytes of the first PEM block with `label`; throws when there is none. */
export function fromPem(pem: string, label: string): Uint8Array<ArrayBuffer> {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`);
  const m = re.exec(pem);
  if (!m) throw new TypeError(`no PEM block "${label}" found`);
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
}

/** Splits a PEM bundle into its certificate blocks. */
export function splitPemCerts(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)?.map(
    (b) => b.endsWith("\n") ? b : b + "\n",
  ) ?? [];
}

/** Generates an extractable ECDSA P-256 key pair. */
export async function generateEcKeyPair(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
}

/** Exports a private key as PKCS#8 PEM. */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** Imports a PKCS#8 PEM ECDSA P-256 private key for signing. */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const der = fromPem(pem, "PRIVATE KEY");
  return await crypto.subtle.importKey("pkcs8", der, EC_ALGORITHM, false, ["sign"]);
}

// ---------------------------------------------------------------------------------------------
// mTLS server and client

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
/** Default bound on `mtlsConnect` (TCP connect + handshake). */
export const CONNECT_TIMEOUT_MS = 5_000;
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

/** Options of {@linkcode mtlsConnect}. */
export interface MtlsConnectOptions {
  /** Server host. */
  host: string;
  /** Server port. */
  port: number;
  /** Client certificate, PEM. */
  cert: string;
  /** Client private key, PKCS#8 PEM. */
  key: string;
  /** Trusted roots, PEM. */
  ca: string;
  /**
   * The server identity meant: an exact SPIFFE id, or a predicate (e.g. "any control node").
   * Host names play no part; the URI SAN is what is checked.
   */
  expectSpiffe: string | ((id: SpiffeId) => boolean);
  /** Refuses servers whose id this returns true for. */
  isRevoked?: (spiffeId: string) => boolean;
  /** Bound on connect + handshake. @default CONNECT_TIMEOUT_MS */
  timeoutMs?: number;
  /** Keep our side writable after the server's FIN (tunnels). @default false */
  allowHalfOpen?: boolean;
  /**
   * SNI server name sent, so a server holding several certificates presents the one meant.
   * It selects only: the SPIFFE check above still decides. @default none
   */
  servername?: string;
  /** ALPN protocols offered; `socket.alpnProtocol` tells which one the server chose. */
  alpnProtocols?: readonly string[];
}

/** Why {@linkcode mtlsConnect} failed. */
export class MtlsConnectError extends Error {
  /** `timeout`, `identity` (server is not who was meant) or `tls` (anything else). */
  readonly kind: "timeout" | "identity" | "tls";
  /** Creates the error. */
  constructor(kind: "timeout" | "identity" | "tls", message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "MtlsConnectError";
    this.kind = kind;
  }
}

/**
 * Opens a mutual TLS connection and checks the server's SPIFFE id is the one meant. Resolves
 * once the handshake is done. Under TLS 1.3 a server that refuses *our* certificate tells us
 * only after that, so such a refusal surfaces as an `error`/`close` on the socket.
 */
export function mtlsConnect(opts: MtlsConnectOptions): Promise<tls.TLSSocket> {
  const expect = opts.expectSpiffe;
  const matches = typeof expect === "string" ? (id: SpiffeId) => id.uri === expect : expect;
  let identityError: MtlsConnectError | undefined;
  return new Promise((resolve, reject) => {
    // allowHalfOpen is honoured by tls.connect at run time but missing from its option type.
    const socket = tls.connect({
      host: opts.host,
      port: opts.port,
      cert: opts.cert,
      key: opts.key,
      ca: opts.ca,
      minVersion: TLS_MIN_VERSION,
      rejectUnauthorized: true,
      allowHalfOpen: opts.allowHalfOpen ?? false,
      ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
      ...(opts.alpnProtocols !== undefined ? { ALPNProtocols: [...opts.alpnProtocols] } : {}),
      checkServerIdentity: (_host, cert) => {
        const id = spiffeIdFromSans(cert.subjectaltname);
        const fail = (why: string) => {
          identityError = new MtlsConnectError("identity", why);
          return identityError;
        };
        if (!id) return fail(`server certificate carries no single SPIFFE id`);
        if (!matches(id)) {
          return fail(
            `server is ${id.uri}, expected ${typeof expect === "string" ? expect : "a match"}`,
          );
        }
        if (opts.isRevoked?.(id.uri)) return fail(`server identity ${id.uri} is revoked`);
        return undefined;
      },
    } as tls.ConnectionOptions);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new MtlsConnectError(
          "timeout",
          `mTLS connect to ${opts.host}:${opts.port} timed out after ${
            opts.timeoutMs ?? CONNECT_TIMEOUT_MS
          }ms`,
        ),
      );
    }, opts.timeoutMs ?? CONNECT_TIMEOUT_MS);
    const onError = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        identityError ??
          new MtlsConnectError("tls", `mTLS connect to ${opts.host}:${opts.port}: ${e.message}`, e),
      );
    };
    socket.once("error", onError);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      if (identityError) {
        socket.destroy();
        reject(identityError);
        return;
      }
      resolve(socket);
    });
  });
}

/**
 * Whether a new trust bundle may replace the current one. A CA rotation always overlaps (the
 * old and the new root are trusted together), so a bundle that keeps none of today's roots is
 * not a rotation and is refused; an empty current set (nothing trusted yet) accepts anything.
 */
export function keepsATrustedRoot(current: ReadonlySet<string>, next: readonly string[]): boolean {
  return current.size === 0 || next.some((r) => current.has(r));
}
