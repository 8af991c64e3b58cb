/**
 * `RateLimit` at the callee's inbound: a token bucket per service (or per service and calling
 * identity with `per: caller`), shared by the proxy's worker threads ({@linkcode SharedRates}).
 * Over the limit a request gets 429 with `Retry-After`, `x-ratelimit-limit`,
 * `x-ratelimit-remaining`, `x-ratelimit-reset` and `x-skein-error: rate_limited`. `routes`
 * give the requests they match (first match wins) their own bucket and figures; the others
 * share the service's.
 *
 * `scope: fleet`: the limit holds for the whole service. The control plane's catalog lists
 * the service's instances and their health; every proxy fronting the service admits
 * `requests_per_second / N` (and `burst / N`) where N is the number of passing instances, and
 * re-shares on every catalog update, so instances coming and going rebalance within the
 * catalog's propagation time. Pure logic over an injected clock; the router calls it.
 * @module
 */
import { ProxyError } from "../forward/mod.ts";
import type { RequestHead } from "../http1/mod.ts";
import { pathOf } from "./route_rules.ts";
import type { SharedRates } from "../resilience/shared_rate.ts";

/** A route of a RateLimit: requests it matches have their own bucket. */
export interface RateLimitRouteSpec {
  /** Which requests (all given conditions must hold). */
  match: { path?: string; path_prefix?: string; method?: string };
  /** Refill rate, requests per second. */
  requests_per_second: number;
  /** Bucket size. */
  burst: number;
}

/** The RateLimit resource fields this layer reads (plain data; no schema in workers). */
export interface RateLimitSpec {
  /** The service limited. */
  service: string;
  /** Refill rate, requests per second. */
  requests_per_second: number;
  /** Bucket size. */
  burst: number;
  /** One bucket per caller. */
  per?: "caller";
  /** Limit per instance or for the whole fleet. */
  scope: "instance" | "fleet";
  /** Routes with limits of their own. */
  routes?: readonly RateLimitRouteSpec[];
}

/** Callers given their own bucket per service (and route); later ones share one. */
export const MAX_CALLER_BUCKETS = 1024;

interface _Bucket {
  readonly name: string;
  readonly rate: number;
  readonly burst: number;
  /** The bucket shared by every caller (all requests without `per: caller`). */
  readonly cell: number;
  /** Bucket per caller identity (`per: caller`), bounded. */
  readonly callers: Map<string, number>;
  /** The header line of a 429 naming the limit. */
  readonly limitLine: string;
}

interface _Route {
  matches(head: RequestHead): boolean;
  readonly bucket: _Bucket;
}

interface _Limit {
  readonly perCaller: boolean;
  readonly base: _Bucket;
  readonly routes: readonly _Route[];
}

/** The limits in force for the services this proxy fronts. */
export class InboundRateLimits {
  readonly #rates: SharedRates;
  readonly #now: () => number;
  #limits = new Map<string, _Limit>();
  #buckets = new Map<string, _Bucket>();

  /** Creates an empty set over the shared buckets; `nowNs` must agree across workers. */
  constructor(rates: SharedRates, nowNs: () => number) {
    this.#rates = rates;
    this.#now = nowNs;
  }

  /**
   * Applies the RateLimit resources of the `local` services; `passing(service)` is how many of
   * its instances the catalog lists as passing (for `scope: fleet`).
   */
  apply(
    specs: readonly RateLimitSpec[],
    local: readonly string[],
    passing: (service: string) => number,
  ): void {
    const next = new Map<string, _Limit>();
    const buckets = new Map<string, _Bucket>();
    for (const s of specs) {
      if (!local.includes(s.service)) continue;
      const n = s.scope === "fleet" ? Math.max(1, passing(s.service)) : 1;
      const bucket = (name: string, rps: number, burst: number): _Bucket => {
        const rate = rps / n;
        const prev = this.#buckets.get(name);
        const b: _Bucket = {
          name,
          rate,
          // A share of the burst below one request would refuse everything.
          burst: Math.max(1, burst / n),
          cell: prev?.cell ?? this.#rates.cell(name),
          callers: prev?.callers ?? new Map(),
          limitLine: `x-ratelimit-limit: ${_num(rate)}\r\n`,
        };
        buckets.set(name, b);
        return b;
      };
      next.set(s.service, {
        perCaller: s.per === "caller",
        base: bucket(`rl\0${s.service}`, s.requests_per_second, s.burst),
        routes: (s.routes ?? []).map((r, i) => ({
          matches: _matcher(r.match),
          bucket: bucket(`rl\0${s.service}\0route-${i}`, r.requests_per_second, r.burst),
        })),
      });
    }
    this.#limits = next;
    this.#buckets = buckets;
  }

  /** The limit per second in force for `service` here, if any (admin pages, tests). */
  rateOf(service: string): number | undefined {
    return this.#limits.get(service)?.base.rate;
  }

  /** Admits one request for `service` from `caller`, or answers it with 429. */
  check(service: string, caller: string | null, head: RequestHead): ProxyError | null {
    if (this.#limits.size === 0) return null;
    const l = this.#limits.get(service);
    if (l === undefined) return null;
    let b = l.base;
    for (const r of l.routes) {
      if (r.matches(head)) {
        b = r.bucket;
        break;
      }
    }
    const cell = l.perCaller ? this.#callerCell(b, caller ?? "") : b.cell;
    const r = this.#rates.take(cell, b.rate, b.burst, this.#now());
    if (r.ok) return null;
    const secs = Math.max(1, Math.ceil(r.waitMs / 1000));
    return new ProxyError(
      429,
      "rate_limited",
      `rate limited: ${service} admits ${_num(b.rate)} requests per second here${
        b === l.base ? "" : " on this route"
      }${l.perCaller ? " per caller" : ""}`,
      `retry-after: ${secs}\r\n${b.limitLine}x-ratelimit-remaining: 0\r\n` +
        `x-ratelimit-reset: ${secs}\r\n`,
    );
  }

  #callerCell(b: _Bucket, caller: string): number {
    let c = b.callers.get(caller);
    if (c === undefined) {
      // Callers beyond the bound (or a full table) share the bucket of everybody.
      if (b.callers.size >= MAX_CALLER_BUCKETS) return b.cell;
      c = this.#rates.cell(`${b.name}\0${caller}`);
      // A full table: this caller shares the service's bucket (kept, so it probes only once).
      if (c === this.#rates.overflowCell) c = b.cell;
      b.callers.set(caller, c);
    }
    return c;
  }
}

function _matcher(m: RateLimitRouteSpec["match"]): (head: RequestHead) => boolean {
  const method = m.method?.toUpperCase();
  return (head) => {
    if (method !== undefined && head.method !== method) return false;
    if (m.path === undefined && m.path_prefix === undefined) return true;
    const p = pathOf(head.target);
    return (m.path === undefined || p === m.path) &&
      (m.path_prefix === undefined || p.startsWith(m.path_prefix));
  };
}

/** A rate as a header value: integral rates as integers, others with up to 3 decimals. */
function _num(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Math.round(x * 1000) / 1000);
}
