/**
 * Which of several certificates answers a TLS client's server name (pure): an exact DNS name
 * of a certificate first, then a wildcard one (`*.example.com` covers exactly one more label,
 * as RFC 6125 §6.4.3 has clients check it), else the first certificate.
 * @module
 */

/** The names one certificate serves (its DNS SANs, else its subject CN), lower case. */
export interface CertNames {
  readonly names: readonly string[];
}

/** Picks a certificate index per server name; built once per set of certificates. */
export class SniIndex {
  readonly #exact = new Map<string, number>();
  readonly #wild = new Map<string, number>();

  /** Indexes `certs`; an earlier certificate keeps a name a later one also carries. */
  constructor(certs: readonly CertNames[]) {
    certs.forEach((c, i) => {
      for (const n of c.names) {
        const name = n.toLowerCase();
        const m = name.startsWith("*.") ? this.#wild : this.#exact;
        const key = name.startsWith("*.") ? name.slice(2) : name;
        if (!m.has(key)) m.set(key, i);
      }
    });
  }

  /** The index of the certificate for `serverName` (0 when none names it). */
  pick(serverName: string | null | undefined): number {
    if (!serverName) return 0;
    const name = serverName.toLowerCase().replace(/\.$/, "");
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf(".");
    if (dot > 0) {
      const wild = this.#wild.get(name.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return 0;
  }
}

/**
 * The DNS names a certificate serves, from node's `subjectAltName` ("DNS:a, DNS:*.b, IP
 * Address:…") and subject ("CN=a\nO=…"): its DNS SANs, or its CN when it has none.
 */
export function certDnsNames(subjectAltName: string | undefined, subject: string): string[] {
  const out: string[] = [];
  for (const part of (subjectAltName ?? "").split(",")) {
    const p = part.trim();
    if (p.startsWith("DNS:")) out.push(p.slice(4).toLowerCase());
  }
  if (out.length > 0) return out;
  const cn = /(?:^|\n|,\s*)CN=([^\n,]+)/.exec(subject);
  return cn ? [cn[1]!.trim().toLowerCase()] : [];
}
