/**
 * The mutual-TLS client on `node:tls`: {@linkcode mtlsConnect} connects, presents our
 * certificate and also checks that the server is the SPIFFE identity meant.
 * @module
 */
import tls from "node:tls";
import { type SpiffeId, spiffeIdFromSans } from "./spiffe.ts";
import { TLS_MIN_VERSION } from "./mtls_server.ts";

/** Default bound on `mtlsConnect` (TCP connect + handshake). */
export const CONNECT_TIMEOUT_MS = 5_000;

/** Options of {@linkcode mtlsConnect}. */
export interface MtlsConnectOptions {
  /** Server host. */
  host: string;
  /** Server port. */
  port: number;
  /** Client certificate, PEM. */
  cert: string;
  /** Client private key, PKCS#8 PEM. */
  key: string;
  /** Trusted roots, PEM. */
  ca: string;
  /**
   * The server identity meant: an exact SPIFFE id, or a predicate (e.g. "any control node").
   * Host names play no part; the URI SAN is what is checked.
   */
  expectSpiffe: string | ((id: SpiffeId) => boolean);
  /** Refuses servers whose id this returns true for. */
  isRevoked?: (spiffeId: string) => boolean;
  /** Bound on connect + handshake. @default CONNECT_TIMEOUT_MS */
  timeoutMs?: number;
  /** Keep our side writable after the server's FIN (tunnels). @default false */
  allowHalfOpen?: boolean;
  /**
   * SNI server name sent, so a server holding several certificates presents the one meant.
   * It selects only: the SPIFFE check above still decides. @default none
   */
  servername?: string;
  /** ALPN protocols offered; `socket.alpnProtocol` tells which one the server chose. */
  alpnProtocols?: readonly string[];
}

/** Why {@linkcode mtlsConnect} failed. */
export class MtlsConnectError extends Error {
  /** `timeout`, `identity` (server is not who was meant) or `tls` (anything else). */
  readonly kind: "timeout" | "identity" | "tls";
  /** Creates the error. */
  constructor(kind: "timeout" | "identity" | "tls", message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "MtlsConnectError";
    this.kind = kind;
  }
}

/**
 * Opens a mutual TLS connection and checks the server's SPIFFE id is the one meant. Resolves
 * once the handshake is done. Under TLS 1.3 a server that refuses *our* certificate tells us
 * only after that, so such a refusal surfaces as an `error`/`close` on the socket.
 */
export function mtlsConnect(opts: MtlsConnectOptions): Promise<tls.TLSSocket> {
  const expect = opts.expectSpiffe;
  const matches = typeof expect === "string" ? (id: SpiffeId) => id.uri === expect : expect;
  let identityError: MtlsConnectError | undefined;
  return new Promise((resolve, reject) => {
    // allowHalfOpen is honoured by tls.connect at run time but missing from its option type.
    const socket = tls.connect({
      host: opts.host,
      port: opts.port,
      cert: opts.cert,
      key: opts.key,
      ca: opts.ca,
      minVersion: TLS_MIN_VERSION,
      rejectUnauthorized: true,
      allowHalfOpen: opts.allowHalfOpen ?? false,
      ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
      ...(opts.alpnProtocols !== undefined ? { ALPNProtocols: [...opts.alpnProtocols] } : {}),
      checkServerIdentity: (_host, cert) => {
        const id = spiffeIdFromSans(cert.subjectaltname);
        const fail = (why: string) => {
          identityError = new MtlsConnectError("identity", why);
          return identityError;
        };
        if (!id) return fail(`server certificate carries no single SPIFFE id`);
        if (!matches(id)) {
          return fail(
            `server is ${id.uri}, expected ${typeof expect === "string" ? expect : "a match"}`,
          );
        }
        if (opts.isRevoked?.(id.uri)) return fail(`server identity ${id.uri} is revoked`);
        return undefined;
      },
    } as tls.ConnectionOptions);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new MtlsConnectError(
          "timeout",
          `mTLS connect to ${opts.host}:${opts.port} timed out after ${
            opts.timeoutMs ?? CONNECT_TIMEOUT_MS
          }ms`,
        ),
      );
    }, opts.timeoutMs ?? CONNECT_TIMEOUT_MS);
    const onError = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        identityError ??
          new MtlsConnectError("tls", `mTLS connect to ${opts.host}:${opts.port}: ${e.message}`, e),
      );
    };
    socket.once("error", onError);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      if (identityError) {
        socket.destroy();
        reject(identityError);
        return;
      }
      resolve(socket);
    });
  });
}
