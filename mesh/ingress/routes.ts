/**
 * Which mesh service an ingress request goes to, by its host and path (pure, no I/O).
 *
 * Hosts work like virtual hosts: the most specific host that has routes is chosen first (an
 * exact name, then the longest `*.suffix` wildcard, then the routes without a host), and only
 * its routes are considered; among them the longest matching path prefix wins. A prefix
 * matches on whole segments: `/api` takes `/api`, `/api/x` and `/api?q`, never `/apix`.
 * @module
 */

/** One route as configured (`ingress[].routes[]`). */
export interface IngressRouteSpec {
  /** Exact host, or `*.example.com`; undefined: any host. Lower case. */
  readonly host?: string;
  /** Path prefix starting with "/". */
  readonly path_prefix: string;
  /** Destination service. */
  readonly service: string;
}

interface _Prefix {
  readonly prefix: string;
  readonly service: string;
}

/** A compiled route table. */
export class IngressRoutes {
  readonly #exact = new Map<string, _Prefix[]>();
  /** Wildcards by suffix (".example.com"), longest suffix first. */
  readonly #wild: { suffix: string; prefixes: _Prefix[] }[] = [];
  #any: _Prefix[] | null = null;

  /** Compiles `routes` (validated by the config schema). */
  constructor(routes: readonly IngressRouteSpec[]) {
    const wild = new Map<string, _Prefix[]>();
    for (const r of routes) {
      const p = { prefix: r.path_prefix, service: r.service };
      if (r.host === undefined) {
        (this.#any ??= []).push(p);
      } else if (r.host.startsWith("*.")) {
        const s = r.host.slice(1);
        wild.set(s, [...(wild.get(s) ?? []), p]);
      } else {
        this.#exact.set(r.host, [...(this.#exact.get(r.host) ?? []), p]);
      }
    }
    for (const [suffix, prefixes] of wild) this.#wild.push({ suffix, prefixes });
    this.#wild.sort((a, b) => b.suffix.length - a.suffix.length);
    const byLength = (a: _Prefix, b: _Prefix) => b.prefix.length - a.prefix.length;
    for (const list of this.#exact.values()) list.sort(byLength);
    for (const w of this.#wild) w.prefixes.sort(byLength);
    this.#any?.sort(byLength);
  }

  /** The services the table routes to (each once). */
  services(): string[] {
    const all = [...this.#exact.values(), ...this.#wild.map((w) => w.prefixes), this.#any ?? []];
    return [...new Set(all.flat().map((p) => p.service))];
  }

  /**
   * The service for a request to `host` (a `Host` value, port allowed, or null) and `path`
   * (origin-form, query allowed); null when no route takes it.
   */
  match(host: string | null, path: string): string | null {
    const list = this.#hostRoutes(normalizeHost(host));
    if (list === null) return null;
    for (const p of list) if (prefixMatches(p.prefix, path)) return p.service;
    return null;
  }

  #hostRoutes(h: string | null): readonly _Prefix[] | null {
    if (h !== null) {
      const exact = this.#exact.get(h);
      if (exact !== undefined) return exact;
      for (const w of this.#wild) {
        // `*.example.com` is any name below example.com, not example.com itself.
        if (h.length > w.suffix.length && h.endsWith(w.suffix)) return w.prefixes;
      }
    }
    return this.#any;
  }
}

/**
 * A `Host` value as a lower-case name without port or trailing dot; null for none, an IP
 * literal in brackets, or anything that is not a host name (so it matches only host-less
 * routes).
 */
export function normalizeHost(host: string | null): string | null {
  if (host === null) return null;
  let h = host.trim().toLowerCase();
  const colon = h.lastIndexOf(":");
  if (colon >= 0) {
    if (!/^\d{1,5}$/.test(h.slice(colon + 1))) return null;
    h = h.slice(0, colon);
  }
  if (h.endsWith(".")) h = h.slice(0, -1);
  return _HOST.test(h) ? h : null;
}

const _HOST = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** Whether `prefix` takes `path` on whole segments (the query is not part of the path). */
export function prefixMatches(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false;
  if (prefix.endsWith("/") || path.length === prefix.length) return true;
  const next = path.charCodeAt(prefix.length);
  return next === 47 /* / */ || next === 63 /* ? */;
}
