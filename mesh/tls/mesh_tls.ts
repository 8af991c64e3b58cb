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
import { X509Certificate } from "node:crypto";
import type tls from "node:tls";
import type net from "node:net";
import type { Logger } from "../../common/log.ts";
import { MUX_ALPN } from "../mux/frame.ts";
import { MuxSession } from "../mux/session.ts";
import type { SessionBalance } from "../mux/session_balance.ts";
import { MuxSessionRegistry } from "../mux/session_registry.ts";
import {
  CONNECT_TIMEOUT_MS,
  createMtlsServer,
  mtlsConnect,
  MtlsConnectError,
  type MtlsServer,
  parseSpiffeId,
  spiffeIdFromSans,
  splitPemCerts,
  type TlsMaterial,
} from "../../common/tls.ts";
import {
  closeQuietly,
  type Endpoint,
  MAX_PENDING_ACCEPTS,
  type MeshConn,
  NativeTlsConn,
  TlsConn,
  TlsListener,
} from "../forward/mod.ts";

/** What a proxy with an identity needs for mTLS (structured-cloneable, so workers get it). */
export interface MeshTls {
  /**
   * Certificate, key and trust bundle (PEM) of the first local service: presented on the
   * outbound calls made for it (upstreams without a `caller`, and `http_proxy`) and by the
   * inbound to callers whose SNI names no other local service.
   */
  material: TlsMaterial;
  /** The service `material` names. @default unknown (its SNI name is then not recorded) */
  service?: string;
  /** The certificates of the other local services, served by SNI. @default none */
  others?: readonly ServiceTls[];
  /** The trust domain peers must belong to. */
  trustDomain: string;
  /** SPIFFE ids refused as peers (the catalog's `trust.revoked`). @default none */
  revoked?: readonly string[];
}

/** One local service's certificate. */
export interface ServiceTls {
  /** The service the certificate names. */
  service: string;
  /** Its certificate, key and trust bundle. */
  material: TlsMaterial;
}

/** Most local services one proxy holds certificates for (proxy.yaml's `services` bound). */
export const MAX_SERVICE_IDENTITIES = 64;

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

/** `materialFor` for a plain {@linkcode MeshTls} as for a state. */
function _materialFor(t: MeshTls, service: string | undefined): TlsMaterial {
  if (service === undefined || service === t.service) return t.material;
  const other = t.others?.find((o) => o.service === service);
  if (other !== undefined) return other.material;
  throw new Error(`no certificate for local service ${service}`);
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
  /** The first service's name, if known; its material is {@linkcode material}. */
  readonly service: string | undefined;
  #material: TlsMaterial;
  /** The other services' material, by service; served by SNI. */
  readonly #others = new Map<string, TlsMaterial>();
  #revoked: Set<string>;
  readonly #servers = new Set<MtlsServer>();
  readonly #conns = new Set<MeshConn>();
  /** The skein-mux/1 sessions peers opened to the inbound servers bound with this state. */
  readonly muxSessions: MuxSessionRegistry = new MuxSessionRegistry();

  /** Starts from the material and revocations of `t`. */
  constructor(t: MeshTls) {
    this.trustDomain = t.trustDomain;
    this.service = t.service;
    this.#material = t.material;
    for (const o of (t.others ?? []).slice(0, MAX_SERVICE_IDENTITIES)) {
      if (o.service !== t.service) this.#others.set(o.service, o.material);
    }
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

  /**
   * The material of local service `service` (default: the first service's), which outbound
   * connections made for it present. Throws for a service this proxy holds no certificate of:
   * presenting another service's would hand the callee the wrong caller.
   */
  materialFor(service?: string): TlsMaterial {
    return _materialFor(this, service);
  }

  /** The other services' certificates (for handing to a worker). */
  get others(): ServiceTls[] {
    return [...this.#others].map(([service, material]) => ({ service, material }));
  }

  /** The SNI names and material the inbound serves besides the default {@linkcode material}. */
  sniMaterial(): Record<string, TlsMaterial> {
    const out: Record<string, TlsMaterial> = {};
    for (const [service, m] of this.#others) {
      const name = meshServerName(this.trustDomain, service);
      if (name !== null) out[name] = m;
    }
    return out;
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
   * New certificate, key and bundle of `service` (default: the first service): every server
   * of this thread uses them for new handshakes (by SNI for the other services), and new
   * outbound connections made for that service use them. Established connections are kept.
   */
  updateMaterial(m: TlsMaterial, service?: string): void {
    if (service === undefined || service === this.service) {
      this.#material = m;
      for (const s of this.#servers) s.updateMaterial(m);
      return;
    }
    if (!this.#others.has(service) && this.#others.size >= MAX_SERVICE_IDENTITIES) return;
    this.#others.set(service, m);
    const name = meshServerName(this.trustDomain, service);
    if (name === null) return;
    for (const s of this.#servers) s.updateSniMaterial(name, m);
  }

  /**
   * A new trust bundle and revocation list. New handshakes (both directions) use the bundle;
   * open connections from or to an identity now revoked are closed at once.
   * Returns how many connections were closed.
   */
  updateTrust(t: MeshTrust): number {
    if (t.roots.length > 0) {
      // Every certificate's context verifies clients, so each gets the new bundle.
      const caPem = bundlePem(t.roots);
      this.updateMaterial({ ...this.#material, caPem });
      for (const [service, m] of [...this.#others]) this.updateMaterial({ ...m, caPem }, service);
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

  /** @internal Wraps a verified native connection and tracks it until it is closed. */
  _adoptNative(c: Deno.TlsConn, identity: string, alpn: string | null = null): NativeTlsConn {
    const conn: NativeTlsConn = new NativeTlsConn(
      c,
      identity,
      () => this.#conns.delete(conn),
      alpn,
    );
    this.#conns.add(conn);
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
  /**
   * Offer skein-mux/1 by ALPN: a proxy that takes it sends all its calls as streams of one
   * connection, and each stream is handed over like a connection. @default true
   */
  mux?: boolean;
  /**
   * Spreads mux sessions over the workers sharing the port: a session this worker should not
   * take gets a rebalancing GoAway, and its caller dials again. @default every session stays
   */
  balance?: SessionBalance;
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
  const mux = opts.mux ?? true;
  const sessions = new Set<MuxSession>();
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
    // A caller asks for the service it means by SNI; the others are the default's fallback.
    sni: state.sniMaterial(),
    logger,
    ...(mux ? { alpnProtocols: [MUX_ALPN, "http/1.1"] } : {}),
    onConnection: (socket, peer) => {
      const conn = state._adopt(socket, peer.spiffeId.uri);
      if (listener === undefined) {
        conn.close();
      } else if (mux && conn.alpnProtocol === MUX_ALPN) {
        // Revocation and close reach the session through `conn`, which the state tracks.
        // Several streams share it, so a write must never wait on Nagle for an earlier ACK.
        conn.setNoDelay(true);
        // A session outlives any one call: a peer host that vanished must not hold it forever.
        conn.setKeepAlive(true);
        // Registered per session, not per frame: /metrics reads its counters when scraped.
        // (A session that ended inside its constructor is folded in by `add`.)
        let session: MuxSession | undefined = undefined;
        const admitted = opts.balance?.admit() ?? true;
        let counted = admitted && opts.balance !== undefined;
        session = new MuxSession(conn, {
          role: "server",
          peerIdentity: conn.peerIdentity,
          onStream: (s) => listener!.push(s),
          onClose: () => {
            if (counted) {
              counted = false;
              opts.balance!.release();
            }
            if (session !== undefined) {
              state.muxSessions.remove(session);
              sessions.delete(session);
            }
          },
        });
        state.muxSessions.add(session);
        if (!admitted) {
          state.muxSessions.rebalanced++;
          session.goAway("rebalance");
        }
        if (!session.closed) sessions.add(session);
      } else {
        listener.push(conn);
      }
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
  opts.balance?.open();
  listener = new TlsListener(
    { transport: "tcp", hostname: bound.address, port: bound.port },
    () => {
      forget();
      opts.balance?.shut();
      // Draining: callers stop opening streams here and dial elsewhere; streams that were
      // already on their way are refused (safe to retry), open ones finish.
      for (const ms of sessions) ms.goAway();
      void server.close({ destroyConnections: false });
    },
    MAX_PENDING_ACCEPTS,
    server.stats,
  );
  return listener;
}

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

/**
 * The name the native client verifies for `service`: the DNS SAN the CA derives from the
 * identity (`serviceDnsName` in control/ca/ca.ts; the same rule, kept in step by the tests
 * that dial CA-issued leaves). Null when the name is not plain lowercase DNS labels, in which
 * case the leaf has no DNS SAN and only node:tls can check the server.
 */
export function meshServerName(trustDomain: string, service: string): string | null {
  const name = `${service}.svc.${trustDomain}`;
  if (name.length > 253 || !_DNS_LABELS.test(service) || !_DNS_LABELS.test(trustDomain)) {
    return null;
  }
  return name;
}

const _DNS_LABELS = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

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

function _parsedRoots(caPem: string): X509Certificate[] {
  if (_roots?.pem !== caPem) {
    _roots = { pem: caPem, certs: splitPemCerts(caPem).map((c) => new X509Certificate(c)) };
  }
  return _roots.certs;
}

/**
 * Why the native connection's server must be refused, or null: its leaf is not signed by one
 * of our roots (Deno.connectTls also trusts the public web PKI, so its own verification alone
 * is not enough), or it lacks exactly one SPIFFE id equal to `identity`, or that id is revoked.
 */
function _checkNativePeer(
  conn: Deno.TlsConn,
  caPem: string,
  identity: string,
  isRevoked: (id: string) => boolean,
): string | null {
  const get = (conn as unknown as Record<symbol, ((detailed: boolean) => unknown) | undefined>)[
    _PEER_CERT!
  ];
  const info = typeof get === "function"
    ? get.call(conn, false) as { raw?: Uint8Array; subjectaltname?: string } | null
    : null;
  if (!info?.raw) return "server certificate not visible";
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(info.raw);
  } catch {
    return "server certificate does not parse";
  }
  const ours = _parsedRoots(caPem).some((root) =>
    leaf.checkIssued(root) && leaf.verify(root.publicKey)
  );
  if (!ours) return "server certificate is not from the mesh CA";
  const id = spiffeIdFromSans(leaf.subjectAltName);
  if (id === null) return "server certificate carries no single SPIFFE id";
  if (id.uri !== identity) return `server is ${id.uri}, expected ${identity}`;
  if (isRevoked(id.uri)) return `server identity ${id.uri} is revoked`;
  return null;
}

/** A native handshake failure: the server may simply have a leaf without the DNS SAN. */
class _HandshakeFailed extends Error {}

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
  const parsed = parseSpiffeId(identity);
  const name = parsed?.kind === "service" && parsed.trustDomain === t.trustDomain
    ? meshServerName(t.trustDomain, parsed.service)
    : null;
  const now = opts.now ?? Date.now;
  const alpns = opts.alpnProtocols;
  const m = _materialFor(t, opts.caller);
  const key = `${ep.key} ${identity}`;
  const mode = opts.outbound ?? "node";
  if (mode === "native") {
    if (name === null || !NATIVE_OUTBOUND_AVAILABLE) {
      throw new MtlsConnectError("tls", `no native mTLS path to ${identity}`);
    }
    const [conn, alpn] = await _connectNative(m, ep, name, identity, isRevoked, timeoutMs, alpns)
      .catch((e) => {
        throw e instanceof _HandshakeFailed
          ? new MtlsConnectError("tls", `mTLS connect to ${ep.key}: ${e.message}`, e)
          : e;
      });
    return _stamp(
      state === null
        ? new NativeTlsConn(conn, identity, undefined, alpn)
        : state._adoptNative(conn, identity, alpn),
      m,
    );
  }
  if (mode === "auto" && name !== null && NATIVE_OUTBOUND_AVAILABLE) {
    const until = _nodeOnly.get(key);
    if (until === undefined || until <= now()) {
      if (until !== undefined) _nodeOnly.delete(key);
      try {
        const [conn, alpn] = await _connectNative(
          m,
          ep,
          name,
          identity,
          isRevoked,
          timeoutMs,
          alpns,
        );
        return _stamp(
          state === null
            ? new NativeTlsConn(conn, identity, undefined, alpn)
            : state._adoptNative(conn, identity, alpn),
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
  return _stamp(state === null ? new TlsConn(socket, identity) : state._adopt(socket, identity), m);
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
  isRevoked: (id: string) => boolean,
  timeoutMs = CONNECT_TIMEOUT_MS,
  alpnProtocols?: readonly string[],
): Promise<[Deno.TlsConn, string | null]> {
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
    const why = _checkNativePeer(conn, m.caPem, identity, isRevoked);
    if (why !== null) {
      closeQuietly(conn);
      throw new MtlsConnectError("identity", why);
    }
    return [conn, alpn] as [Deno.TlsConn, string | null];
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
