/**
 * Mutual TLS under the transport (SPEC section 5: control-to-control traffic is mTLS). The
 * listener is a `createMtlsServer` that admits only verified, unrevoked control identities of
 * the trust domain, over TLS 1.3; the dialer is `mtlsConnect` checking the server is the node
 * meant. Each stream reports the verified SPIFFE id, so `spiffeControlAuthorizer` binds the
 * hello's node id to the certificate.
 *
 * Certificate, key and bundle are read from the {@linkcode TransportTlsSource} for every
 * connection, so renewals and CA rotations apply to new connections without a restart;
 * established connections keep the material they were made with.
 * @module
 */
import type tls from "node:tls";
import type { NodeId } from "../../common/ids.ts";
import { type Logger, nullLogger } from "../../common/log.ts";
import { explainUntrustedPeer } from "./seed_hint.ts";
import { TlsSocketIo } from "../../common/tls/socket_io.ts";
import {
  createMtlsServer,
  mtlsConnect,
  type MtlsServerStats,
  peerSpiffeId,
  type SpiffeId,
  spiffeIdFor,
  type TlsMaterial,
} from "../../common/tls/mod.ts";
import type {
  ByteStream,
  Dialer,
  ListenerFactory,
  PeerAddress,
  PeerIdentity,
  StreamListener,
} from "./stream.ts";

/** Verified inbound connections waiting for `accept()`; beyond it new ones are closed. */
export const TLS_MAX_PENDING_ACCEPTS = 64;
/** Handshakes in progress at once on the Raft port (a cluster has a handful of peers). */
export const TLS_MAX_CONCURRENT_HANDSHAKES = 64;
/** Bound on one inbound handshake (slowloris), and on an outbound connect + handshake. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;

/** Where the transport gets its certificate and revocation list (a `ControlIdentity`). */
export interface TransportTlsSource {
  /** Trust domain every peer must belong to. */
  readonly trustDomain: string;
  /** Certificate, key and trust bundle for the next connection. */
  material(): TlsMaterial;
  /** Whether a SPIFFE id is revoked. */
  isRevoked(spiffeId: string): boolean;
  /** Whether a distrusted intermediate signed a peer's leaf (DER). @default never */
  isDistrusted?(leafDer: Uint8Array): boolean;
  /** Calls `listener` when an intermediate is newly distrusted; returns an unsubscribe. */
  onDistrust?(listener: () => void): () => void;
  /** Ids of the roots trusted now, named when a peer's certificate chains to none of them. */
  trustedRootIds?(): readonly string[];
}

/** Options of {@linkcode tlsDialer} and {@linkcode tlsListenerFactory}. */
export interface TlsTransportOptions {
  /** Certificate, key, bundle and revocation list, read per connection. */
  readonly source: TransportTlsSource;
  /** Where handshake refusals go (debug level). @default nullLogger */
  readonly logger?: Logger;
  /** @default TLS_HANDSHAKE_TIMEOUT_MS */
  readonly handshakeTimeoutMs?: number;
  /** @default TLS_MAX_CONCURRENT_HANDSHAKES */
  readonly maxConcurrentHandshakes?: number;
  /** @default TLS_MAX_PENDING_ACCEPTS */
  readonly maxPendingAccepts?: number;
}

/** A listener that also exposes the mTLS server's refusal counters. */
export interface TlsStreamListener extends StreamListener {
  /** Handshakes accepted and refused by reason, live. */
  readonly stats: MtlsServerStats;
}

/** A verified `node:tls` socket as a {@linkcode ByteStream}. */
export class TlsByteStream implements ByteStream {
  readonly remote: string;
  readonly #io: TlsSocketIo;
  readonly #identity: PeerIdentity;

  /** Wraps a socket whose handshake is done and whose peer is `spiffeId` (verified). */
  constructor(socket: tls.TLSSocket, spiffeId: string) {
    this.#io = new TlsSocketIo(socket);
    this.#identity = { uris: [spiffeId] };
    this.remote = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
  }

  /** Reads into `buf`; null at end of stream. One read at a time. */
  read(buf: Uint8Array): Promise<number | null> {
    return this.#io.read(buf);
  }

  /**
   * Writes all of `data`; resolves once the socket has taken the bytes, so the caller may reuse
   * its buffer (the transport's writer does).
   */
  write(data: Uint8Array): Promise<number> {
    return this.#io.write(data, `stream to ${this.remote}`);
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    this.#io.close();
  }

  /** The peer's verified SPIFFE id. */
  peerIdentity(): PeerIdentity {
    return this.#identity;
  }
}

/**
 * Dials peers over mutual TLS: presents the current certificate and checks the server is
 * `spiffe://<td>/control/<peer>` (any unrevoked control node of the domain when the caller does
 * not name the peer), not revoked, and verified against the current bundle.
 */
export function tlsDialer(opts: TlsTransportOptions): Dialer {
  const { source } = opts;
  return {
    dial(addr: PeerAddress, signal: AbortSignal, peer?: NodeId): Promise<ByteStream> {
      const td = source.trustDomain;
      let expect: string | ((id: SpiffeId) => boolean);
      try {
        expect = peer === undefined
          ? (id) => id.kind === "control" && id.trustDomain === td
          : spiffeIdFor(td, { kind: "control", node: peer });
      } catch (e) {
        return Promise.reject(e);
      }
      const m = source.material();
      const connecting = mtlsConnect({
        host: addr.hostname,
        port: addr.port,
        cert: m.certPem,
        key: m.keyPem,
        ca: m.caPem,
        expectSpiffe: expect,
        isRevoked: (id) => source.isRevoked(id),
        timeoutMs: opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS,
      });
      return new Promise<ByteStream>((resolve, reject) => {
        const onAbort = () => {
          reject(signal.reason ?? new Error("dial aborted"));
          // A handshake that completes after the abort must not leak its socket.
          connecting.then((s) => s.destroy(), () => {});
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        connecting.then((socket) => {
          signal.removeEventListener("abort", onAbort);
          if (signal.aborted) return;
          const id = peerSpiffeId(socket);
          if (!id) {
            socket.destroy();
            reject(new Error(`server at ${addr.hostname}:${addr.port} was not verified`));
            return;
          }
          const leaf = socket.getPeerCertificate()?.raw;
          if (leaf !== undefined && source.isDistrusted?.(leaf)) {
            socket.destroy();
            reject(
              new Error(
                `server at ${addr.hostname}:${addr.port} presents a certificate from a ` +
                  "distrusted intermediate",
              ),
            );
            return;
          }
          resolve(new TlsByteStream(socket, id.uri));
        }, (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(explainUntrustedPeer(e, { peer, trustedRootIds: source.trustedRootIds?.() }));
        });
      });
    },
  };
}

/**
 * Listens with mutual TLS: TLS 1.3 only, a client certificate required and verified against
 * the current bundle, only unrevoked control identities of the trust domain admitted. Anything
 * else is closed during or right after the handshake and never reaches the transport.
 */
export function tlsListenerFactory(opts: TlsTransportOptions): ListenerFactory {
  const { source } = opts;
  const log = opts.logger ?? nullLogger;
  const maxPending = opts.maxPendingAccepts ?? TLS_MAX_PENDING_ACCEPTS;
  return {
    async listen(addr: PeerAddress): Promise<TlsStreamListener> {
      const queue: TlsByteStream[] = [];
      let waiter: { resolve: (s: ByteStream) => void; reject: (e: Error) => void } | null = null;
      let closed = false;
      let applied = source.material();
      // Each admitted link's peer leaf: a distrust made later cuts the links it covers.
      const live = new Map<tls.TLSSocket, Uint8Array>();
      const forgetDistrust = source.onDistrust?.(() => {
        for (const [socket, leaf] of [...live]) {
          if (!source.isDistrusted?.(leaf)) continue;
          log.warn(
            "transport: closing a link whose certificate comes from a distrusted intermediate",
            {
              remote: `${socket.remoteAddress}:${socket.remotePort}`,
            },
          );
          live.delete(socket);
          socket.destroy();
        }
      });
      const srv = createMtlsServer({
        cert: applied.certPem,
        key: applied.keyPem,
        ca: applied.caPem,
        trustDomain: source.trustDomain,
        isRevoked: (id) => source.isRevoked(id),
        isDistrusted: (leaf) => source.isDistrusted?.(leaf) ?? false,
        acceptPeer: (p) => p.spiffeId.kind === "control",
        maxConcurrentHandshakes: opts.maxConcurrentHandshakes ?? TLS_MAX_CONCURRENT_HANDSHAKES,
        handshakeTimeoutMs: opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS,
        logger: log,
        onConnection(socket, peer) {
          const leaf = socket.getPeerCertificate()?.raw;
          if (leaf !== undefined) {
            live.set(socket, leaf);
            socket.once("close", () => live.delete(socket));
          }
          const stream = new TlsByteStream(socket, peer.spiffeId.uri);
          if (closed || queue.length >= maxPending) {
            log.warn("transport: too many pending TLS connections, refusing", {
              remote: stream.remote,
              limit: maxPending,
            });
            stream.close();
            return;
          }
          const w = waiter;
          if (w) {
            waiter = null;
            w.resolve(stream);
          } else {
            queue.push(stream);
          }
        },
      });
      // Runs before node:tls builds the TLS socket for this connection, so a renewed leaf or a
      // new bundle is used from the very next handshake.
      srv.server.prependListener("connection", () => {
        const m = source.material();
        if (m === applied) return;
        applied = m;
        try {
          srv.updateMaterial(m);
        } catch (e) {
          log.error("transport: could not load new TLS material", { error: e as Error });
        }
      });
      const bound = await srv.listen(addr.port, addr.hostname);
      return {
        addr: { hostname: bound.host, port: bound.port },
        stats: srv.stats,
        accept(): Promise<ByteStream> {
          if (closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
          const s = queue.shift();
          if (s) return Promise.resolve(s);
          return new Promise((resolve, reject) => (waiter = { resolve, reject }));
        },
        close(): void {
          if (closed) return;
          closed = true;
          forgetDistrust?.();
          for (const s of queue.splice(0)) s.close();
          waiter?.reject(new Deno.errors.BadResource("listener closed"));
          waiter = null;
          void srv.close({ destroyConnections: true });
        },
      };
    },
  };
}
