/**
 * The dialer of hosts outside the mesh: TLS originated by the proxy, with SNI and hostname
 * verification by the runtime's TLS client (rustls), against its built-in roots or, when the
 * `ExternalService` names a `ca_file`, against that file's certificates only.
 *
 * `Deno.connectTls` trusts the given `caCerts` in addition to its built-in roots, so with a CA
 * file the leaf is checked once more after the handshake: a certificate of that file must have
 * issued it. A public CA that signed a certificate for the same name is then not enough.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { splitPemCerts } from "../../common/tls/pem.ts";
import { closeQuietly, type Endpoint, type OriginTls, type PoolOptions } from "../forward/mod.ts";

/** Raised when a host outside the mesh cannot be reached or fails verification. */
export class OriginConnectError extends Error {
  /** Creates the error; `message` says why, with the server name. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OriginConnectError";
  }
}

// The peer certificate is visible only through this internal method of Deno's TlsConn.
const _internal = (Deno as unknown as Record<symbol, Record<string, unknown> | undefined>)[
  (Deno as unknown as { internal: symbol }).internal
];
const _PEER_CERT = typeof _internal?.getPeerCertificate === "symbol"
  ? _internal.getPeerCertificate
  : null;

/** The parsed certificates of the CA bundles seen, by PEM text (a handful per proxy). */
const _parsed = new Map<string, X509Certificate[]>();
/** Most CA bundles kept parsed; beyond it the cache starts over. */
const MAX_PARSED_BUNDLES = 64;

function _certsOf(pem: string): X509Certificate[] {
  let certs = _parsed.get(pem);
  if (certs === undefined) {
    certs = splitPemCerts(pem).map((c) => new X509Certificate(c));
    if (_parsed.size >= MAX_PARSED_BUNDLES) _parsed.clear();
    _parsed.set(pem, certs);
  }
  return certs;
}

/**
 * Why a verified connection's leaf must still be refused under `caPem`, or null: it must have
 * been issued (and signed) by one of the bundle's certificates.
 */
function _notFromBundle(conn: Deno.TlsConn, caPem: string): string | null {
  if (_PEER_CERT === null) return "this runtime does not show the server certificate";
  const get = (conn as unknown as Record<symbol, ((detailed: boolean) => unknown) | undefined>)[
    _PEER_CERT
  ];
  const info = typeof get === "function"
    ? get.call(conn, false) as { raw?: Uint8Array } | null
    : null;
  if (!info?.raw) return "server certificate not visible";
  return issuedByBundle(info.raw, caPem)
    ? null
    : "server certificate is not issued by a certificate of the ca_file";
}

/** Whether the certificate `leafDer` was issued and signed by one of `caPem`'s certificates. */
export function issuedByBundle(leafDer: Uint8Array, caPem: string): boolean {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafDer);
  } catch {
    return false;
  }
  return _certsOf(caPem).some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
}

/**
 * Opens a TLS connection to `ep` (a host outside the mesh): SNI and the verified name are
 * `ep.origin.serverName`. The caller (the connection pool) bounds the time it may take and
 * closes a connection that arrives too late.
 */
export async function connectOrigin(ep: Endpoint, origin: OriginTls): Promise<Deno.TlsConn> {
  if (origin.caError !== undefined) throw new OriginConnectError(origin.caError);
  let caCerts: string[] | undefined;
  if (origin.caPem !== null) {
    caCerts = splitPemCerts(origin.caPem);
    if (caCerts.length === 0) {
      throw new OriginConnectError("the ca_file holds no PEM certificate");
    }
  }
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.connectTls({
      hostname: origin.serverName,
      port: ep.port,
      ...(caCerts !== undefined ? { caCerts } : {}),
    });
  } catch (e) {
    throw new OriginConnectError((e as Error).message, { cause: e });
  }
  try {
    await conn.handshake();
  } catch (e) {
    closeQuietly(conn);
    throw new OriginConnectError(
      `TLS to ${origin.serverName}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  if (origin.caPem !== null) {
    const why = _notFromBundle(conn, origin.caPem);
    if (why !== null) {
      closeQuietly(conn);
      throw new OriginConnectError(`TLS to ${origin.serverName}: ${why}`);
    }
  }
  return conn;
}

/**
 * A pool's `connect` that dials hosts outside the mesh with {@linkcode connectOrigin} and
 * everything else with `mesh` (mesh mTLS, or plain TCP without an identity).
 */
export function withOrigins(
  mesh: (ep: Endpoint) => Promise<Deno.Conn>,
): (ep: Endpoint) => Promise<Deno.Conn> {
  return (ep) => ep.origin !== undefined ? connectOrigin(ep, ep.origin) : mesh(ep);
}

/**
 * `opts` with its `connect` (plain `Deno.connect` when it has none) wrapped by
 * {@linkcode withOrigins}, so a pool dials hosts outside the mesh with TLS of its own.
 */
export function withOriginDialer(opts: PoolOptions): PoolOptions {
  const mesh = opts.connect ??
    ((ep: Endpoint) => Deno.connect({ hostname: ep.hostname, port: ep.port }));
  return { ...opts, connect: withOrigins(mesh) };
}
