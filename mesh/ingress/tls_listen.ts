/**
 * The TLS side of an ingress listener: a `node:tls` server (the TLS server in Deno that can
 * pick a certificate by SNI and swap certificates while running) terminating TLS for clients
 * outside the mesh, which need no certificate. Each connection takes a slot of its client
 * address's cap from accept to close (handshake included), and a handshake not done in time is
 * cut (slowloris). Finished connections reach the forwarder as `TlsConn`s through a
 * `TlsListener`, like the mesh inbound's.
 * @module
 */
import type net from "node:net";
import tls from "node:tls";
import type { Logger } from "../../common/log.ts";
import { MAX_PENDING_ACCEPTS, TlsConn, TlsListener } from "../forward/mod.ts";
import type { AddressCap } from "./address_cap.ts";
import type { IngressCertStore } from "./cert_store.ts";
import { IngressTlsConn } from "./tls_conn.ts";

/** A client that has not finished its TLS handshake after this long is closed. */
export const INGRESS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Options of {@linkcode listenIngressTls}. */
export interface IngressTlsOptions {
  /** Address to bind. */
  hostname: string;
  /** Port to bind (0: any). */
  port: number;
  /** Share the port with other data planes (`SO_REUSEPORT`). @default false */
  reusePort?: boolean;
  /** The certificates. */
  store: IngressCertStore;
  /** Connections per client address. */
  cap: AddressCap;
  /** Refusals are logged here at debug. */
  logger: Logger;
  /** @default INGRESS_HANDSHAKE_TIMEOUT_MS */
  handshakeTimeoutMs?: number;
}

/** Binds the TLS server and returns the listener the forwarder accepts from. */
export async function listenIngressTls(o: IngressTlsOptions): Promise<TlsListener> {
  const store = o.store;
  const timeoutMs = o.handshakeTimeoutMs ?? INGRESS_HANDSHAKE_TIMEOUT_MS;
  const first = store.defaultCert;
  const server = tls.createServer({
    cert: first.certPem,
    key: first.keyPem,
    minVersion: "TLSv1.2",
    ALPNProtocols: ["http/1.1"],
    SNICallback: (name: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) =>
      cb(null, store.certFor(name).context),
  });
  // Clients without SNI get the server's own context: it follows the first certificate.
  store.onDefaultChange((c) => server.setSecureContext({ cert: c.certPem, key: c.keyPem }));
  const handshaking = new Map<string, ReturnType<typeof setTimeout>>();
  // deno-lint-ignore prefer-const
  let listener: TlsListener | undefined;
  server.on("connection", (raw: net.Socket) => {
    const addr = raw.remoteAddress ?? "";
    if (!o.cap.take(addr)) {
      o.logger.debug("ingress connection refused: too many from one address", { peer: addr });
      raw.destroy();
      return;
    }
    raw.once("close", () => o.cap.release(addr));
    const k = `${addr}:${raw.remotePort}`;
    const timer = setTimeout(() => {
      handshaking.delete(k);
      o.logger.debug("ingress TLS handshake timed out", { peer: k });
      raw.destroy();
    }, timeoutMs);
    handshaking.set(k, timer);
    raw.once("close", () => {
      clearTimeout(timer);
      if (handshaking.get(k) === timer) handshaking.delete(k);
    });
  });
  server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
    o.logger.debug("ingress TLS handshake failed", { error: err.message });
    socket.destroy();
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const k = `${socket.remoteAddress}:${socket.remotePort}`;
    const timer = handshaking.get(k);
    if (timer !== undefined) {
      clearTimeout(timer);
      handshaking.delete(k);
    }
    if (listener === undefined) {
      socket.destroy();
      return;
    }
    // The native handle where the runtime has it (cheaper per request), else the socket API.
    listener.push(IngressTlsConn.of(socket) ?? new TlsConn(socket, null));
  });
  const bound = await new Promise<net.AddressInfo>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: o.port, host: o.hostname, reusePort: o.reusePort ?? false }, () => {
      server.off("error", reject);
      resolve(server.address() as net.AddressInfo);
    });
  });
  listener = new TlsListener(
    { transport: "tcp", hostname: bound.address, port: bound.port },
    () => {
      store.close();
      for (const t of handshaking.values()) clearTimeout(t);
      handshaking.clear();
      server.close();
    },
    MAX_PENDING_ACCEPTS,
  );
  return listener;
}
