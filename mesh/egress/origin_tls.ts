/**
 * The dialer of hosts outside the mesh: TLS originated by the proxy, with SNI and hostname
 * verification by the runtime's TLS client (rustls), against its built-in roots plus, when the
 * `ExternalService` names a `ca_file`, that file's certificates.
 *
 * `Deno.connectTls` can only add CA certificates to its built-in roots, not replace them, and
 * shows no chain beyond the leaf, so a `ca_file` does not pin: a host whose certificate chains
 * to a built-in root is accepted too (checking the leaf's issuer against the file instead would
 * refuse every server that sends an intermediate). See docs/egress.md.
 * @module
 */
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
