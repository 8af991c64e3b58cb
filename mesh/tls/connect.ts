/**
 * The outbound mTLS dialer of the proxy-to-proxy hop: `Deno.connectTls` where the runtime and
 * the server's certificate allow it, `node:tls` otherwise, always checking that the server is
 * the destination service.
 * @module
 */
import { X509Certificate } from "node:crypto";
import {
  anchorOf,
  chainIntermediates,
  CONNECT_TIMEOUT_MS,
  DistrustedIssuers,
  mtlsConnect,
  MtlsConnectError,
  parseSpiffeId,
  spiffeIdFromSans,
  splitPemCerts,
  type TlsMaterial,
} from "../../common/tls/mod.ts";
import {
  closeQuietly,
  type Endpoint,
  type MeshConn,
  NativeTlsConn,
  TlsConn,
} from "../forward/mod.ts";
import { materialFor, meshServerName, type MeshTls, MeshTlsState } from "./state.ts";

/** How long an endpoint whose server failed the native handshake is dialled by node:tls only. */
export const NATIVE_RETRY_AFTER_MS = 60_000;
/** Most endpoints remembered as "node:tls only"; the oldest is forgotten first. */
export const MAX_NODE_ONLY_ENDPOINTS = 1024;

/** Which client an outbound mesh connection uses. */
export type OutboundTls =
  /** `Deno.connectTls` when the runtime allows it and the server's leaf has the DNS SAN. */
  | "auto"
  /** `Deno.connectTls` only, no fallback (tests and benchmarks); fails where it cannot. */
  | "native"
  /** Always `node:tls` (`mtlsConnect`). */
  | "node";

/** Options of {@linkcode connectMtls}. */
export interface ConnectMtlsOptions {
  /**
   * Which client to use. The default stays node:tls: `Deno.connectTls` half-closes fine, but
   * Deno 2.9's node:tls server (our inbound) loses the close_notify/FIN that follows more than
   * about 64 KiB sent at native speed, so TCP tunnels, which pass half-closes on, keep node:tls.
   * The HTTP pool passes "auto" (HTTP framing never relies on a half-close).
   * @default "node"
   */
  outbound?: OutboundTls;
  /** ALPN protocols offered; the connection's `alpnProtocol` tells which one was chosen. */
  alpnProtocols?: readonly string[];
  /** Millisecond clock for the node-only memory. @default Date.now */
  now?: () => number;
  /**
   * The local service the connection is made for: its certificate is presented, so the callee
   * sees that service as the caller. @default the first service
   */
  caller?: string;
}

// Deno's rustls client verifies a server name other than the address dialled only through
// this internal option, and reads the peer certificate only through this internal method.
// Without the first there is no native path; the second is a second check when present.
const _internal = (Deno as unknown as Record<symbol, Record<string, unknown> | undefined>)[
  (Deno as unknown as { internal: symbol }).internal
];
const _SERVER_NAME = typeof _internal?.serverNameSymbol === "symbol"
  ? _internal.serverNameSymbol
  : null;
const _PEER_CERT = typeof _internal?.getPeerCertificate === "symbol"
  ? _internal.getPeerCertificate
  : null;

/**
 * Whether this runtime can make native outbound mesh connections: it needs both the server
 * name option and the peer certificate (see `_checkNativePeer` for why the latter is required).
 */
export const NATIVE_OUTBOUND_AVAILABLE: boolean = _SERVER_NAME !== null && _PEER_CERT !== null;

/** The parsed roots of the last bundle seen (bundles change only on rotation). */
let _roots: { pem: string; certs: X509Certificate[] } | null = null;
/** The intermediates our own chain carries (they change only when the CA's intermediate does). */
let _ours: { pem: string; certs: X509Certificate[] } | null = null;

function _parsedRoots(caPem: string): X509Certificate[] {
  if (_roots?.pem !== caPem) {
    _roots = { pem: caPem, certs: splitPemCerts(caPem).map((c) => new X509Certificate(c)) };
  }
  return _roots.certs;
}

function _ownIntermediates(certPem: string): X509Certificate[] {
  if (_ours?.pem !== certPem) _ours = { pem: certPem, certs: chainIntermediates(certPem) };
  return _ours.certs;
}

/**
 * Why the native connection's server must be refused, or null: its leaf does not lead to one
 * of our roots (Deno.connectTls also trusts the public web PKI, so its own verification alone
 * is not enough), or it lacks exactly one SPIFFE id equal to `identity`, or that id is revoked.
 * The runtime shows only the peer's leaf, so a leaf from an intermediate is checked through
 * the intermediate our own chain carries (the same one, but across an intermediate rotation);
 * a leaf a distrusted intermediate signed is refused though it chains to a root;
 * when ours comes through an intermediate, a leaf from another one is `_UNKNOWN_ISSUER`, which
 * node:tls then verifies in full (it sees the chain the server sends).
 */
function _checkNativePeer(
  conn: Deno.TlsConn,
  certPem: string,
  caPem: string,
  identity: string,
  check: _PeerChecks,
): { why: string | null; leaf?: Uint8Array } {
  const get = (conn as unknown as Record<symbol, ((detailed: boolean) => unknown) | undefined>)[
    _PEER_CERT!
  ];
  const info = typeof get === "function"
    ? get.call(conn, false) as { raw?: Uint8Array; subjectaltname?: string } | null
    : null;
  if (!info?.raw) return { why: "server certificate not visible" };
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(info.raw);
  } catch {
    return { why: "server certificate does not parse" };
  }
  const roots = _parsedRoots(caPem);
  const intermediates = _ownIntermediates(certPem);
  if (anchorOf(leaf, intermediates, roots) === null) {
    // Only a CA that signs through intermediates can have one this proxy has not seen yet.
    return {
      why: intermediates.length > 0
        ? _UNKNOWN_ISSUER
        : "server certificate is not from the mesh CA",
    };
  }
  const id = spiffeIdFromSans(leaf.subjectAltName);
  if (id === null) return { why: "server certificate carries no single SPIFFE id" };
  if (id.uri !== identity) return { why: `server is ${id.uri}, expected ${identity}` };
  if (check.isRevoked(id.uri)) return { why: `server identity ${id.uri} is revoked` };
  if (check.isDistrusted(leaf)) {
    return { why: "server certificate comes from a distrusted intermediate" };
  }
  return { why: null, leaf: new Uint8Array(info.raw) };
}

/** A native handshake failure: the server may simply have a leaf without the DNS SAN. */
class _HandshakeFailed extends Error {}

/** The native peer's leaf comes from an intermediate this proxy does not hold. */
const _UNKNOWN_ISSUER = "server certificate comes from an intermediate this proxy does not hold";

/** Endpoints (pool keys) whose servers failed the native handshake, per thread. */
const _nodeOnly = new Map<string, number>();

/**
 * Opens an mTLS connection to a remote inbound. The endpoint's `identity` is the server id
 * required; an endpoint without one is refused, so mTLS never silently falls back to a
 * connection whose peer nobody checked. A revoked server identity is refused before dialling.
 *
 * The fast path is a native `Deno.TlsConn`: it presents our certificate and verifies the
 * server's chain and its DNS SAN `<service>.svc.<td>`, which only a leaf of that service
 * carries, then checks the URI SAN too where the runtime shows the peer certificate. A server
 * whose handshake fails there (say an older leaf without the DNS SAN, or an impostor) is dialled
 * again with node:tls, whose SPIFFE check gives the verdict, and that endpoint stays on node:tls
 * for {@linkcode NATIVE_RETRY_AFTER_MS}. Connection errors (refused, unreachable) do not retry.
 */
export async function connectMtls(
  t: MeshTls | MeshTlsState,
  ep: Endpoint,
  timeoutMs?: number,
  opts: ConnectMtlsOptions = {},
): Promise<MeshConn> {
  const identity = ep.identity;
  if (identity === undefined) {
    throw new Error(`no expected identity for ${ep.key}; refusing an unchecked connection`);
  }
  const state = t instanceof MeshTlsState ? t : null;
  const isRevoked = state === null
    ? (id: string) => (t.revoked ?? []).includes(id)
    : (id: string) => state.isRevoked(id);
  if (isRevoked(identity)) {
    throw new MtlsConnectError("identity", `server identity ${identity} is revoked`);
  }
  const fixed = state === null ? new DistrustedIssuers(t.distrusted ?? []) : null;
  const isDistrusted = (leaf: X509Certificate | Uint8Array) =>
    fixed !== null ? fixed.refuses(leaf) : state!.isDistrusted(leaf);
  const check: _PeerChecks = { isRevoked, isDistrusted };
  const parsed = parseSpiffeId(identity);
  const name = parsed?.kind === "service" && parsed.trustDomain === t.trustDomain
    ? meshServerName(t.trustDomain, parsed.service)
    : null;
  const now = opts.now ?? Date.now;
  const alpns = opts.alpnProtocols;
  const m = materialFor(t, opts.caller);
  const key = `${ep.key} ${identity}`;
  const mode = opts.outbound ?? "node";
  if (mode === "native") {
    if (name === null || !NATIVE_OUTBOUND_AVAILABLE) {
      throw new MtlsConnectError("tls", `no native mTLS path to ${identity}`);
    }
    const [conn, alpn, leaf] = await _connectNative(m, ep, name, identity, check, timeoutMs, alpns)
      .catch((e) => {
        throw e instanceof _HandshakeFailed
          ? new MtlsConnectError("tls", `mTLS connect to ${ep.key}: ${e.message}`, e)
          : e;
      });
    return _stamp(
      state === null
        ? new NativeTlsConn(conn, identity, undefined, alpn)
        : state._adoptNative(conn, identity, alpn, leaf),
      m,
    );
  }
  if (mode === "auto" && name !== null && NATIVE_OUTBOUND_AVAILABLE) {
    const until = _nodeOnly.get(key);
    if (until === undefined || until <= now()) {
      if (until !== undefined) _nodeOnly.delete(key);
      try {
        const [conn, alpn, leaf] = await _connectNative(
          m,
          ep,
          name,
          identity,
          check,
          timeoutMs,
          alpns,
        );
        return _stamp(
          state === null
            ? new NativeTlsConn(conn, identity, undefined, alpn)
            : state._adoptNative(conn, identity, alpn, leaf),
          m,
        );
      } catch (e) {
        if (!(e instanceof _HandshakeFailed)) throw e;
        if (_nodeOnly.size >= MAX_NODE_ONLY_ENDPOINTS) {
          const oldest = _nodeOnly.keys().next();
          if (!oldest.done) _nodeOnly.delete(oldest.value);
        }
        _nodeOnly.set(key, now() + NATIVE_RETRY_AFTER_MS);
      }
    }
  }
  const socket = await mtlsConnect({
    host: ep.hostname,
    port: ep.port,
    cert: m.certPem,
    key: m.keyPem,
    ca: m.caPem,
    expectSpiffe: identity,
    isRevoked,
    allowHalfOpen: true,
    timeoutMs,
    // The same name the native path sends, so a proxy fronting several services answers
    // with the certificate of the one meant.
    ...(name !== null ? { servername: name } : {}),
    ...(alpns !== undefined ? { alpnProtocols: alpns } : {}),
  });
  const peerLeaf = socket.getPeerCertificate()?.raw;
  if (peerLeaf !== undefined && isDistrusted(peerLeaf)) {
    socket.destroy();
    throw new MtlsConnectError(
      "identity",
      `server ${identity} presents a certificate from a distrusted intermediate`,
    );
  }
  return _stamp(state === null ? new TlsConn(socket, identity) : state._adopt(socket, identity), m);
}

/** The checks a server's leaf must pass besides its chain. */
interface _PeerChecks {
  isRevoked: (id: string) => boolean;
  isDistrusted: (leaf: X509Certificate | Uint8Array) => boolean;
}

/** Expiry of each material's certificate, parsed once per material. */
const _notAfters = new WeakMap<TlsMaterial, number>();

/** Records on `conn` when the certificate it presented (`m`'s) expires. */
function _stamp<C extends MeshConn>(conn: C, m: TlsMaterial): C {
  let at = _notAfters.get(m);
  if (at === undefined) {
    try {
      at = Date.parse(new X509Certificate(m.certPem).validTo);
    } catch {
      at = NaN;
    }
    if (!Number.isFinite(at)) at = Infinity;
    _notAfters.set(m, at);
  }
  conn.localNotAfter = at;
  return conn;
}

/** @internal Forgets which endpoints were put on node:tls only (tests). */
export function _resetNodeOnly(): void {
  _nodeOnly.clear();
}

async function _connectNative(
  m: TlsMaterial,
  ep: Endpoint,
  serverName: string,
  identity: string,
  check: _PeerChecks,
  timeoutMs = CONNECT_TIMEOUT_MS,
  alpnProtocols?: readonly string[],
): Promise<[Deno.TlsConn, string | null, Uint8Array | undefined]> {
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = (async () => {
    const conn = await Deno.connectTls({
      hostname: ep.hostname,
      port: ep.port,
      caCerts: splitPemCerts(m.caPem),
      cert: m.certPem,
      key: m.keyPem,
      ...(alpnProtocols !== undefined ? { alpnProtocols: [...alpnProtocols] } : {}),
      [_SERVER_NAME!]: serverName,
    } as Deno.ConnectTlsOptions);
    let alpn: string | null = null;
    try {
      alpn = (await conn.handshake()).alpnProtocol;
    } catch (e) {
      closeQuietly(conn);
      throw new _HandshakeFailed((e as Error).message, { cause: e });
    }
    if (timedOut) {
      closeQuietly(conn);
      throw new MtlsConnectError("timeout", "timed out");
    }
    // rustls has checked the chain and the name, but against Deno's default roots (the public
    // web PKI) plus ours: a public CA could have signed that name. So the leaf must also be
    // signed by one of OUR roots, and carry exactly the SPIFFE id meant, not revoked meanwhile.
    const checked = _checkNativePeer(conn, m.certPem, m.caPem, identity, check);
    const why = checked.why;
    if (why === _UNKNOWN_ISSUER) {
      // Not a verdict: node:tls sees the whole chain the server sends and decides.
      closeQuietly(conn);
      throw new _HandshakeFailed(why);
    }
    if (why !== null) {
      closeQuietly(conn);
      throw new MtlsConnectError("identity", why);
    }
    return [conn, alpn, checked.leaf] as [Deno.TlsConn, string | null, Uint8Array | undefined];
  })();
  try {
    return await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(
            new MtlsConnectError(
              "timeout",
              `mTLS connect to ${ep.hostname}:${ep.port} timed out after ${timeoutMs}ms`,
            ),
          );
        }, timeoutMs);
      }),
    ]);
  } catch (e) {
    // A late connection is closed by the attempt itself once it sees `timedOut`.
    attempt.catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
