/**
 * Binds the ingress listeners of proxy.yaml (TLS ones load their certificates first, so a
 * listener never starts without them) and makes their forwarders: each is an HTTP forwarder
 * like an upstream listener's, whose router picks the destination per request by host and
 * path, with the ingress entry's own limits for hostile clients.
 * @module
 */
import type { IngressListener } from "../../config/ingress_schema.ts";
import type { Logger } from "../../common/log.ts";
import { type ConnectionPool, HttpForwarder } from "../forward/mod.ts";
import type { ForwarderOptions } from "../forward/mod.ts";
import { AddressCap } from "./address_cap.ts";
import { IngressCertStore } from "./cert_store.ts";
import { ingressListenerName } from "./decide.ts";
import { listenIngressTls } from "./tls_listen.ts";

/** One bound ingress listener, before its forwarder starts. */
export interface IngressBinding {
  /** The listener the forwarder accepts from. */
  readonly listener: Deno.Listener;
  /** Its per-address cap. */
  readonly cap: AddressCap;
  /** Whether the TLS server counts connections itself (else the forwarder admits them). */
  readonly tls: boolean;
}

/**
 * Binds every entry of `ingress` on `ports[i]` (default: its configured port); closes what it
 * bound and throws when one fails (a certificate that cannot be used, a port in use).
 */
export async function bindIngress(
  ingress: readonly IngressListener[],
  logger: Logger,
  opts: {
    ports?: readonly number[];
    reusePort?: boolean;
    /**
     * Whether this data plane reports certificate reloads; every worker reloads its own copy,
     * and one report per proxy is enough (the others log at debug). @default true
     */
    reportReloads?: boolean;
  } = {},
): Promise<IngressBinding[]> {
  const out: IngressBinding[] = [];
  try {
    for (const [i, l] of ingress.entries()) {
      const port = opts.ports?.[i] ?? l.listen.port;
      const cap = new AddressCap(l.limits.max_connections_per_address);
      const log = logger.with({ listener: ingressListenerName(i) });
      if (l.tls === undefined) {
        const listener = opts.reusePort
          ? Deno.listen({ hostname: l.listen.hostname, port, reusePort: true })
          : Deno.listen({ hostname: l.listen.hostname, port });
        out.push({ listener, cap, tls: false });
        continue;
      }
      const store = await IngressCertStore.open(
        l.tls.certificates,
        opts.reportReloads === false ? _quiet(log) : log,
        l.tls.reload_interval,
      );
      try {
        const listener = await listenIngressTls({
          hostname: l.listen.hostname,
          port,
          reusePort: opts.reusePort ?? false,
          store,
          cap,
          logger: log,
          handshakeTimeoutMs: l.limits.header_read_timeout,
        });
        out.push({ listener, cap, tls: true });
      } catch (e) {
        store.close();
        throw e;
      }
    }
  } catch (e) {
    closeIngress(out);
    throw new Error(`ingress listener ${out.length}: ${(e as Error).message}`);
  }
  return out;
}

/** Closes bound listeners (a start that failed after binding them); twice is harmless. */
export function closeIngress(bound: readonly IngressBinding[]): void {
  for (const b of bound) {
    try {
      b.listener.close();
    } catch {
      // Closed already (by its forwarder's cleanup).
    }
  }
}

/** `log` with its info and error events lowered to debug. */
function _quiet(log: Logger): Logger {
  return {
    debug: (m, f) => log.debug(m, f),
    info: (m, f) => log.debug(m, f),
    warn: (m, f) => log.warn(m, f),
    error: (m, f) => log.debug(m, f),
    with: (f) => _quiet(log.with(f)),
    enabled: (l) => log.enabled(l),
  };
}

/** The forwarder options every listener shares (the data plane's). */
export type IngressCommon = Omit<ForwarderOptions, "listener" | "pool">;

/** Starts the forwarder of each bound ingress listener. */
export function startIngress(
  ingress: readonly IngressListener[],
  bound: readonly IngressBinding[],
  common: IngressCommon,
  pool: ConnectionPool,
): HttpForwarder[] {
  return bound.map((b, i) => {
    const l = ingress[i]!;
    const cap = b.cap;
    return new HttpForwarder(b.listener, {
      ...common,
      pool,
      listener: { name: ingressListenerName(i), protocol: "http" },
      limits: {
        maxHeadBytes: l.limits.max_header_bytes,
        maxHeaderCount: common.limits?.maxHeaderCount ?? 100,
        maxBodyBytes: l.limits.max_body_bytes,
      },
      headerTimeoutMs: l.limits.header_read_timeout,
      // The app learns the scheme the client used; what a client sent is dropped (decide.ts).
      clientLines: `x-forwarded-proto: ${b.tls ? "https" : "http"}\r\n`,
      publicAnswers: true,
      admit: b.tls ? null : (conn) => {
        const addr = (conn.remoteAddr as Deno.NetAddr).hostname;
        return cap.take(addr) ? () => cap.release(addr) : null;
      },
    });
  });
}
