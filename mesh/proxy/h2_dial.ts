/**
 * How a data plane's HTTP/2 calls reach their endpoints: another proxy's inbound over mTLS with
 * ALPN `h2` (presenting the calling service's certificate, checking the callee's), or plain TCP
 * (h2c) to a local app and on a plaintext mesh.
 * @module
 */
import { DEFAULT_CONNECT_TIMEOUT_MS, type Endpoint, noDelay } from "../forward/mod.ts";
import { connectMtls, type MeshTlsState } from "../tls/mod.ts";
import type { H2Route } from "../h2/gateway.ts";

/** ALPN id of HTTP/2 over TLS. */
export const H2_ALPN = "h2";

/** h2c over TCP to `ep` (a local app, or a proxy's inbound on a plaintext mesh). */
export async function plainH2Dial(ep: Endpoint): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: ep.hostname, port: ep.port });
  // Many streams share the connection: no write may wait on Nagle for an earlier ACK.
  noDelay(conn);
  return conn;
}

/**
 * The route of an outbound listener whose calls are made for `caller` (undefined: the first
 * local service): mTLS with ALPN `h2` to endpoints that carry an identity, h2c otherwise.
 */
export function h2Dialer(meshTls: MeshTlsState | undefined, caller: string | undefined): H2Route {
  const as = meshTls === undefined || caller === meshTls.service ? undefined : caller;
  return {
    key: `out:${as ?? ""}`,
    dial: async (ep) => {
      // Never h2c to a host outside the mesh: that hop needs the TLS the HTTP/1 pool originates.
      if (ep.origin !== undefined) {
        throw new Error(`HTTP/2 calls to ${ep.key} (outside the mesh) are not supported`);
      }
      if (meshTls === undefined || ep.identity === undefined) return await plainH2Dial(ep);
      const conn = await connectMtls(meshTls, ep, DEFAULT_CONNECT_TIMEOUT_MS, {
        outbound: "node",
        alpnProtocols: [H2_ALPN],
        ...(as === undefined ? {} : { caller: as }),
      });
      if (conn.alpnProtocol !== H2_ALPN) {
        conn.close();
        throw new Error(`${ep.key} did not take ALPN h2 (a proxy without HTTP/2?)`);
      }
      // Many streams share the connection: no write may wait on Nagle for an earlier ACK.
      conn.setNoDelay(true);
      return conn;
    },
  };
}
