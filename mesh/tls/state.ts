/**
 * The per-thread TLS state of the proxy-to-proxy hop. With an identity, the `inbound` listener
 * admits only peers with a certificate from the mesh CA (their SPIFFE id becomes
 * `ClientInfo.identity`), and connections to other proxies' inbound ports present our
 * certificate and insist that the server is the destination service
 * (`spiffe://<td>/svc/<service>`). Everything else (the local app, the tunnel bridge) stays
 * plaintext on loopback.
 *
 * {@linkcode MeshTlsState} is that live state: every data plane (the main thread's or a
 * worker's) holds one, its inbound servers and outbound connections read the current material
 * from it, and `updateMaterial` / `updateTrust` change it at run time (renewal, CA rotation,
 * revocation) without dropping established connections, except those to or from a newly
 * revoked identity.
 * @module
 */
import type tls from "node:tls";
import type { X509Certificate } from "node:crypto";
import { MuxSessionRegistry } from "../mux/session_registry.ts";
import { DistrustedIssuers, type MtlsServer, type TlsMaterial } from "../../common/tls/mod.ts";
import { type MeshConn, NativeTlsConn, TlsConn } from "../forward/mod.ts";

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
  /** Intermediates (PEM) whose leaves are refused (the catalog's `trust.distrusted`). @default none */
  distrusted?: readonly string[];
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
  /** Distrusted intermediates, one PEM each. @default none */
  distrusted?: readonly string[];
}

/** Most revoked identities held (the CA's own cap, `MAX_REVOKED_IDENTITIES`). */
export const MAX_REVOKED_PEERS = 10_000;

/** The SPIFFE id a proxy of `service` presents. */
export function serviceSpiffeId(trustDomain: string, service: string): string {
  return `spiffe://${trustDomain}/svc/${service}`;
}

/** The certificate a {@linkcode MeshTls} presents for local `service` (the same rule as {@linkcode MeshTlsState.materialFor}). */
export function materialFor(t: MeshTls, service: string | undefined): TlsMaterial {
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
  #distrusted: DistrustedIssuers;
  /** Each open connection's peer leaf (DER), checked again when the distrust list grows. */
  readonly #peerLeaves = new WeakMap<MeshConn, Uint8Array>();
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
    this.#distrusted = new DistrustedIssuers(t.distrusted ?? []);
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
    return materialFor(this, service);
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

  /** The distrusted intermediates, as PEMs (for handing to a worker). */
  get distrusted(): readonly string[] {
    return this.#distrusted.pems;
  }

  /** Whether a distrusted intermediate signed the peer leaf `leaf` (DER or parsed). */
  isDistrusted(leaf: Uint8Array | X509Certificate): boolean {
    return this.#distrusted.refuses(leaf);
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
   * A new trust bundle, revocation list and distrusted intermediates. New handshakes (both
   * directions) use them; open connections from or to an identity now revoked, or whose peer
   * leaf a now distrusted intermediate signed, are closed at once.
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
    const before = this.#distrusted.pems;
    const distrusted = t.distrusted ?? [];
    const grew = distrusted.some((p) => !before.includes(p));
    if (grew || distrusted.length !== before.length) {
      this.#distrusted = new DistrustedIssuers(distrusted);
    }
    let closed = 0;
    for (const c of [...this.#conns]) {
      const leaf = grew ? this.#peerLeaves.get(c) : undefined;
      if (
        (c.peerIdentity !== null && this.#revoked.has(c.peerIdentity)) ||
        (leaf !== undefined && this.#distrusted.refuses(leaf))
      ) {
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
    const raw = socket.getPeerCertificate()?.raw;
    if (raw !== undefined) this.#peerLeaves.set(conn, raw);
    socket.once("close", () => this.#conns.delete(conn));
    return conn;
  }

  /** @internal Wraps a verified native connection and tracks it until it is closed. */
  _adoptNative(
    c: Deno.TlsConn,
    identity: string,
    alpn: string | null = null,
    peerLeaf?: Uint8Array,
  ): NativeTlsConn {
    const conn: NativeTlsConn = new NativeTlsConn(
      c,
      identity,
      () => this.#conns.delete(conn),
      alpn,
    );
    this.#conns.add(conn);
    if (peerLeaf !== undefined) this.#peerLeaves.set(conn, peerLeaf);
    return conn;
  }

  /** @internal Registers a server for material updates until it closes. */
  _addServer(s: MtlsServer): () => void {
    this.#servers.add(s);
    return () => this.#servers.delete(s);
  }
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
