/**
 * The HTTP client a follower forwards API requests to the leader with: HTTPS presenting this
 * node's control certificate, so the leader believes the forwarded-peer header it sends.
 * @module
 */
import type { TlsMaterial } from "../../common/tls.ts";

/** A `fetch` that presents a client certificate, for {@linkcode ApiOptions.fetch}. */
export interface MtlsFetch {
  /** Sends `req` with the current material. */
  fetch(req: Request): Promise<Response>;
  /** Closes the underlying HTTP clients. */
  close(): void;
}

/**
 * Creates a fetch over `Deno.createHttpClient` with this node's certificate, key and trust
 * bundle. `material()` is read on every request; when it returns a new object (renewal, CA
 * rotation) a new client is built, and the previous one is closed only after `retireMs`, so
 * requests in flight on it finish.
 */
export function createMtlsFetch(material: () => TlsMaterial, retireMs = 30_000): MtlsFetch {
  let current: { m: TlsMaterial; client: Deno.HttpClient } | null = null;
  const retiring = new Set<ReturnType<typeof setTimeout>>();
  const old: Deno.HttpClient[] = [];
  const clientFor = (m: TlsMaterial): Deno.HttpClient => {
    if (current?.m === m) return current.client;
    const client = Deno.createHttpClient({ caCerts: [m.caPem], cert: m.certPem, key: m.keyPem });
    if (current) {
      const prev = current.client;
      old.push(prev);
      const t = setTimeout(() => {
        retiring.delete(t);
        old.splice(old.indexOf(prev), 1);
        prev.close();
      }, retireMs);
      retiring.add(t);
    }
    current = { m, client };
    return client;
  };
  return {
    fetch(req) {
      return fetch(req, { client: clientFor(material()) });
    },
    close() {
      for (const t of retiring) clearTimeout(t);
      retiring.clear();
      for (const c of old.splice(0)) c.close();
      current?.client.close();
      current = null;
    },
  };
}
