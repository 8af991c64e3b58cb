/**
 * Mutual TLS on the proxy-to-proxy hop. With an identity, the `inbound` listener admits only
 * peers with a certificate from the mesh CA (their SPIFFE id becomes `ClientInfo.identity`),
 * and connections to other proxies' inbound ports present our certificate and insist that the
 * server is the destination service (`spiffe://<td>/svc/<service>`). Everything else (the
 * local app, the tunnel bridge) stays plaintext on loopback.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import { createMtlsServer, mtlsConnect, type TlsMaterial } from "../../common/tls.ts";
import { type Endpoint, TlsConn, TlsListener } from "../forward/mod.ts";

/** What a proxy with an identity needs for mTLS. */
export interface MeshTls {
  /** Certificate, key and trust bundle (PEM). */
  material: TlsMaterial;
  /** The trust domain peers must belong to. */
  trustDomain: string;
}

/** The SPIFFE id a proxy of `service` presents. */
export function serviceSpiffeId(trustDomain: string, service: string): string {
  return `spiffe://${trustDomain}/svc/${service}`;
}

/**
 * Binds an mTLS listener that hands verified connections over as {@linkcode TlsConn}s.
 * Plaintext, certificate-less and foreign-CA clients are closed during the handshake.
 */
export async function listenMtls(
  t: MeshTls,
  hostname: string,
  port: number,
  logger: Logger,
): Promise<TlsListener> {
  // deno-lint-ignore prefer-const
  let listener: TlsListener | undefined;
  const server = createMtlsServer({
    cert: t.material.certPem,
    key: t.material.keyPem,
    ca: t.material.caPem,
    trustDomain: t.trustDomain,
    allowHalfOpen: true,
    logger,
    onConnection: (socket, peer) => {
      const conn = new TlsConn(socket, peer.spiffeId.uri);
      if (listener === undefined) conn.close();
      else listener.push(conn);
    },
  });
  const bound = await server.listen(port, hostname);
  listener = new TlsListener(
    { transport: "tcp", hostname: bound.host, port: bound.port },
    () => void server.close({ destroyConnections: false }),
  );
  return listener;
}

/**
 * Opens an mTLS connection to a remote inbound. The endpoint's `identity` is the server id
 * required; an endpoint without one is refused, so mTLS never silently falls back to a
 * connection whose peer nobody checked.
 */
export async function connectMtls(t: MeshTls, ep: Endpoint, timeoutMs?: number): Promise<TlsConn> {
  if (ep.identity === undefined) {
    throw new Error(`no expected identity for ${ep.key}; refusing an unchecked connection`);
  }
  const socket = await mtlsConnect({
    host: ep.hostname,
    port: ep.port,
    cert: t.material.certPem,
    key: t.material.keyPem,
    ca: t.material.caPem,
    expectSpiffe: ep.identity,
    allowHalfOpen: true,
    timeoutMs,
  });
  return new TlsConn(socket, ep.identity);
}
