/**
 * Mutual TLS on the proxy-to-proxy hop. With an identity, the `inbound` listener admits only
 * peers with a certificate from the mesh CA (their SPIFFE id becomes `ClientInfo.identity`),
 * and connections to other proxies' inbound ports present our certificate and insist that the
 * server is the destination service (`spiffe://<td>/svc/<service>`). Everything else (the
 * local app, the tunnel bridge) stays plaintext on loopback.
 *
 * {@linkcode MeshTlsState} is the per-thread live TLS state: every data plane (the main
 * thread's or a worker's) holds one, its inbound servers and outbound connections read the
 * current material from it, and `updateMaterial` / `updateTrust` change it at run time
 * (renewal, CA rotation, revocation) without dropping established connections, except those
 * to or from a newly revoked identity.
 * @module
 */
import type tls from "node:tls";
import type net from "node:net";
import type { Logger } from "../../common/log.ts";
import {
  createMtlsServer,
  mtlsConnect,
  type MtlsServer,
  type TlsMaterial,
} from "../../common/tls.ts";
import { type Endpoint, TlsConn, TlsListener } from "../forward/mod.ts";

/** What a proxy with an identity needs for mTLS (structured-cloneable, so workers get it). */
export interface MeshTls {
  /** Certificate, key and trust bundle (PEM). */
  material: TlsMaterial;
  /** The trust domain peers must belong to. */
  trustDomain: string;
  /** SPIFFE ids refused as peers (the catalog's `trust.revoked`). @default none */
  revoked?: readonly string[];
}

/** A new trust bundle and revocation list, as the catalog carries them (`trust`). */
export interface MeshTrust {
  /** Trusted roots, one PEM certificate each (two during a CA rotation). */
  roots: readonly string[];
  /** Revoked SPIFFE ids. */
  revoked: readonly string[];
}

/** Most revoked identities held (the CA's own cap, `MAX_REVOKED_IDENTITIES`). */
export const MAX_REVOKED_PEERS = 10_000;

/** The SPIFFE id a proxy of `service` presents. */
export function serviceSpiffeId(trustDomain: string, service: string): string {
  return `spiffe://${trustDomain}/svc/${service}`;
}

/** The trust bundle PEM of a list of roots. */
export function bundlePem(roots: readonly string[]): string {
  return roots.map((r) => (r.endsWith("\n") ? r : r + "\n")).join("");
}

/**
 * The live mTLS state of one thread: current material, revoked ids, the inbound servers
 * bound here and every open mesh connection (both directions), so updates reach them all.
 */
export class MeshTlsState implements MeshTls {
  /** The trust domain peers must belong to. */
  readonly trustDomain: string;
  #material: TlsMaterial;
  #revoked: Set<string>;
  readonly #servers = new Set<MtlsServer>();
  readonly #conns = new Set<TlsConn>();

  /** Starts from the material and revocations of `t`. */
  constructor(t: MeshTls) {
    this.trustDomain = t.trustDomain;
    this.#material = t.material;
    this.#revoked = new Set((t.revoked ?? []).slice(0, MAX_REVOKED_PEERS));
  }

  /** `t` itself when it is already a state, else a new state from it. */
  static of(t: MeshTls | MeshTlsState): MeshTlsState {
    return t instanceof MeshTlsState ? t : new MeshTlsState(t);
  }

  /** The material new handshakes use. */
  get material(): TlsMaterial {
    return this.#material;
  }

  /** The revoked ids, as a plain list (for handing to a worker). */
  get revoked(): readonly string[] {
    return [...this.#revoked];
  }

  /** Mesh connections open in this thread (inbound and outbound). */
  get openConnections(): number {
    return this.#conns.size;
  }

  /** Whether `spiffeId` is revoked. */
  isRevoked(spiffeId: string): boolean {
    return this.#revoked.has(spiffeId);
  }

  /**
   * New certificate, key and bundle: every server of this thread uses them for new
   * handshakes, and so do new outbound connections. Established connections are kept.
   */
  updateMaterial(m: TlsMaterial): void {
    this.#material = m;
    for (const s of this.#servers) s.updateMaterial(m);
  }

  /**
   * A new trust bundle and revocation list. New handshakes (both directions) use the bundle;
   * open connections from or to an identity now revoked are closed at once.
   * Returns how many connections were closed.
   */
  updateTrust(t: MeshTrust): number {
    if (t.roots.length > 0) {
      this.updateMaterial({ ...this.#material, caPem: bundlePem(t.roots) });
    }
    this.#revoked = new Set(t.revoked.slice(0, MAX_REVOKED_PEERS));
    let closed = 0;
    for (const c of [...this.#conns]) {
      if (c.peerIdentity !== null && this.#revoked.has(c.peerIdentity)) {
        this.#conns.delete(c);
        try {
          c.close();
        } catch {
          // Closed already.
        }
        closed++;
      }
    }
    return closed;
  }

  /** @internal Wraps a verified socket and tracks it until it closes. */
  _adopt(socket: tls.TLSSocket, identity: string): TlsConn {
    const conn = new TlsConn(socket, identity);
    this.#conns.add(conn);
    socket.once("close", () => this.#conns.delete(conn));
    return conn;
  }

  /** @internal Registers a server for material updates until it closes. */
  _addServer(s: MtlsServer): () => void {
    this.#servers.add(s);
    return () => this.#servers.delete(s);
  }
}

/** Options of {@linkcode listenMtls}. */
export interface ListenMtlsOptions {
  /**
   * Bind with `SO_REUSEPORT`, so the inbound servers of several worker threads share the
   * port and the kernel spreads connections over them. @default false
   */
  reusePort?: boolean;
}

/**
 * Binds an mTLS listener that hands verified connections over as {@linkcode TlsConn}s.
 * Plaintext, certificate-less, foreign-CA and revoked clients are closed during the handshake.
 * Pass a {@linkcode MeshTlsState} to have its updates reach this listener.
 */
export async function listenMtls(
  t: MeshTls | MeshTlsState,
  hostname: string,
  port: number,
  logger: Logger,
  opts: ListenMtlsOptions = {},
): Promise<TlsListener> {
  const state = MeshTlsState.of(t);
  // deno-lint-ignore prefer-const
  let listener: TlsListener | undefined;
  const m = state.material;
  const server = createMtlsServer({
    cert: m.certPem,
    key: m.keyPem,
    ca: m.caPem,
    trustDomain: state.trustDomain,
    isRevoked: (id) => state.isRevoked(id),
    allowHalfOpen: true,
    logger,
    onConnection: (socket, peer) => {
      const conn = state._adopt(socket, peer.spiffeId.uri);
      if (listener === undefined) conn.close();
      else listener.push(conn);
    },
  });
  // createMtlsServer's own listen() has no SO_REUSEPORT, so bind the node server directly.
  const bound = await new Promise<net.AddressInfo>((resolve, reject) => {
    const s = server.server;
    s.once("error", reject);
    s.listen({ port, host: hostname, reusePort: opts.reusePort ?? false }, () => {
      s.off("error", reject);
      resolve(s.address() as net.AddressInfo);
    });
  });
  const forget = state._addServer(server);
  listener = new TlsListener(
    { transport: "tcp", hostname: bound.address, port: bound.port },
    () => {
      forget();
      void server.close({ destroyConnections: false });
    },
  );
  return listener;
}

/**
 * Opens an mTLS connection to a remote inbound. The endpoint's `identity` is the server id
 * required; an endpoint without one is refused, so mTLS never silently falls back to a
 * connection whose peer nobody checked. A revoked server identity is refused too.
 */
export async function connectMtls(
  t: MeshTls | MeshTlsState,
  ep: Endpoint,
  timeoutMs?: number,
): Promise<TlsConn> {
  if (ep.identity === undefined) {
    throw new Error(`no expected identity for ${ep.key}; refusing an unchecked connection`);
  }
  const state = t instanceof MeshTlsState ? t : null;
  const m = t.material;
  const socket = await mtlsConnect({
    host: ep.hostname,
    port: ep.port,
    cert: m.certPem,
    key: m.keyPem,
    ca: m.caPem,
    expectSpiffe: ep.identity,
    isRevoked: state === null
      ? (id) => (t.revoked ?? []).includes(id)
      : (id) => state.isRevoked(id),
    allowHalfOpen: true,
    timeoutMs,
  });
  return state === null ? new TlsConn(socket, ep.identity) : state._adopt(socket, ep.identity);
}
