/**
 * The inbound mTLS listener of the proxy-to-proxy hop: verified connections (and the streams
 * of skein-mux/1 sessions) handed over to the forwarder, following the thread's
 * {@linkcode MeshTlsState}.
 * @module
 */
import type net from "node:net";
import type { Logger } from "../../common/log.ts";
import { MUX_ALPN } from "../mux/frame.ts";
import { MuxSession } from "../mux/session.ts";
import type { SessionBalance } from "../mux/session_balance.ts";
import { createMtlsServer } from "../../common/tls/mod.ts";
import { MAX_PENDING_ACCEPTS, TlsListener } from "../forward/mod.ts";
import { type MeshTls, MeshTlsState } from "./state.ts";

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
 * Binds an mTLS listener that hands verified connections over as `TlsConn`s (`mesh/forward/`).
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
    isDistrusted: (leaf) => state.isDistrusted(leaf),
    allowHalfOpen: true,
    // A caller asks for the service it means by SNI; the others are the default's fallback.
    sni: state.sniMaterial(),
    logger,
    ...(mux ? { alpnProtocols: [MUX_ALPN, "h2", "http/1.1"] } : {}),
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
