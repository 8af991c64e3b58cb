/**
 * `RateLimit` at the callee's inbound: a token bucket per service (or per service and calling
 * identity with `per: caller`), shared by the proxy's worker threads ({@linkcode SharedRates}).
 * Over the limit a request gets 429 with `Retry-After`, `x-ratelimit-limit`,
 * `x-ratelimit-remaining`, `x-ratelimit-reset` and `x-skein-error: rate_limited`.
 *
 * `scope: fleet`: the limit holds for the whole service. The control plane's catalog lists
 * the service's instances and their health; every proxy fronting the service admits
 * `requests_per_second / N` (and `burst / N`) where N is the number of passing instances, and
 * re-shares on every catalog update, so instances coming and going rebalance within the
 * catalog's propagation time. Pure logic over an injected clock; the router calls it.
 * @module
 */
import { ProxyError } from "../forward/mod.ts";
import type { SharedRates } from "./shared_rate.ts";

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
}

/** Callers given their own bucket per service; later ones share one. */
export const MAX_CALLER_BUCKETS = 1024;

interface _Limit {
  readonly rate: number;
  readonly burst: number;
  readonly perCaller: boolean;
  /** The service-wide bucket (every request's without `per: caller`). */
  readonly cell: number;
  /** Bucket per caller identity (`per: caller`), bounded. */
  readonly callers: Map<string, number>;
  /** The header lines of a 429 that do not change per request. */
  readonly limitLine: string;
}

/** The limits in force for the services this proxy fronts. */
export class InboundRateLimits {
  readonly #rates: SharedRates;
  readonly #now: () => number;
  #limits = new Map<string, _Limit>();

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
    for (const s of specs) {
      if (!local.includes(s.service)) continue;
      const n = s.scope === "fleet" ? Math.max(1, passing(s.service)) : 1;
      const rate = s.requests_per_second / n;
      // A share of the burst below one request would refuse everything.
      const burst = Math.max(1, s.burst / n);
      const prev = this.#limits.get(s.service);
      next.set(s.service, {
        rate,
        burst,
        perCaller: s.per === "caller",
        cell: prev?.cell ?? this.#rates.cell(`rl\0${s.service}`),
        callers: prev?.callers ?? new Map(),
        limitLine: `x-ratelimit-limit: ${_num(rate)}\r\n`,
      });
    }
    this.#limits = next;
  }

  /** The limit per second in force for `service` here, if any (admin pages, tests). */
  rateOf(service: string): number | undefined {
    return this.#limits.get(service)?.rate;
  }

  /** Admits one request for `service` from `caller`, or answers it with 429. */
  check(service: string, caller: string | null): ProxyError | null {
    if (this.#limits.size === 0) return null;
    const l = this.#limits.get(service);
    if (l === undefined) return null;
    let cell = l.cell;
    if (l.perCaller) cell = this.#callerCell(l, service, caller ?? "");
    const r = this.#rates.take(cell, l.rate, l.burst, this.#now());
    if (r.ok) return null;
    const secs = Math.max(1, Math.ceil(r.waitMs / 1000));
    return new ProxyError(
      429,
      "rate_limited",
      `rate limited: ${service} admits ${_num(l.rate)} requests per second here${
        l.perCaller ? " per caller" : ""
      }`,
      `retry-after: ${secs}\r\n${l.limitLine}x-ratelimit-remaining: 0\r\n` +
        `x-ratelimit-reset: ${secs}\r\n`,
    );
  }

  #callerCell(l: _Limit, service: string, caller: string): number {
    let c = l.callers.get(caller);
    if (c === undefined) {
      // Callers beyond the bound (or a full table) share the service-wide bucket.
      c = l.callers.size < MAX_CALLER_BUCKETS ? this.#rates.cell(`rl\0${service}\0${caller}`) : -1;
      if (c < 0) return l.cell;
      l.callers.set(caller, c);
    }
    return c;
  }
}

/** A rate as a header value: integral rates as integers, others with up to 3 decimals. */
function _num(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Math.round(x * 1000) / 1000);
}
