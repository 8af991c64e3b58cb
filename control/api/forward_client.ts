/**
 * The HTTP client a follower forwards API requests to the leader with: HTTPS presenting this
 * node's control certificate, so the leader believes the forwarded-peer header it sends.
 * @module
 */
import { splitPemCerts, type TlsMaterial } from "../../common/tls/mod.ts";
import { ControlHttp } from "../../common/tls/control_https.ts";

/** A `fetch` that presents a client certificate, for {@linkcode ApiOptions.fetch}. */
export interface MtlsFetch {
  /** Sends `req` with the current material. */
  fetch(req: Request): Promise<Response>;
  /** Closes the underlying HTTP clients. */
  close(): void;
}

/**
 * Creates a fetch with this node's certificate, key and trust bundle that accepts only a
 * control node as the server (`ControlHttp`: the mesh roots alone, a control SPIFFE id).
 * `material()` is read on every request; a new object (renewal, CA rotation) switches the
 * client, which keeps requests in flight on the previous connections.
 */
export function createMtlsFetch(material: () => TlsMaterial): MtlsFetch {
  let current: TlsMaterial | null = null;
  let http: ControlHttp | null = null;
  return {
    fetch(req) {
      const m = material();
      if (m !== current) {
        current = m;
        if (http) {
          http.setRoots(splitPemCerts(m.caPem));
          http.setMaterial(m);
        } else http = new ControlHttp(splitPemCerts(m.caPem), m);
      }
      return http!.fetch(req);
    },
    close() {
      http?.close();
      http = null;
      current = null;
    },
  };
}
