/**
 * The control node's dashboard memory: the last 15 minutes of proxy reports in 10-second
 * buckets per call edge, recent denials and certificate expiry. Bounded in every dimension;
 * pure (the clock is passed in). Counters arrive cumulative: the first report of a proxy is
 * its baseline, later ones add what moved (a restarted proxy's smaller counters start over).
 * @module
 */
import type { DenialStats, HeartbeatStats } from "../../common/heartbeat_stats.ts";
import { STATS_BUCKETS } from "../../common/heartbeat_stats.ts";

/** Width of one bucket, in ms. */
export const BUCKET_MS = 10_000;
/** Buckets kept: 15 minutes. */
export const BUCKETS = 90;
/** Most call edges tracked. */
export const MAX_EDGES = 1024;
/** Most proxies whose last counters are remembered. */
export const MAX_REPORTERS = 4096;
/** Most denials kept. */
export const MAX_DENIALS = 100;
/** Most certificates tracked. */
export const MAX_CERTS = 4096;

interface _Bucket {
  /** Absolute bucket number (time / BUCKET_MS). */
  n: number;
  requests: number;
  errors: number;
  hist: number[];
  rejections: number;
  inflight: number;
}

interface _Edge {
  source: string;
  destination: string;
  side: "out" | "in";
  ring: (_Bucket | null)[];
  /** The first bucket with data: rates are over the time covered, not the whole window. */
  first: number;
}

interface _Seen {
  requests: number;
  errors: number;
  hist: number[];
  rejections: number;
}

/** Golden signals of one service, one point per bucket (oldest first). */
export interface ServiceSignals {
  /** Bucket start times, epoch ms. */
  t: number[];
  /** Requests per second. */
  rate: number[];
  /** Share of requests that did not fail (0..1), null without requests. */
  success: (number | null)[];
  /** Latency quantiles in ms, null without requests. */
  p50: (number | null)[];
  p95: (number | null)[];
  p99: (number | null)[];
  /** Highest in-flight count reported in the bucket. */
  inflight: number[];
  /** Circuit-breaker rejections in the bucket. */
  rejections: number[];
}

/** One call edge over the whole window. */
export interface EdgeView {
  source: string;
  destination: string;
  /** Requests per second over the window. */
  rate: number;
  /** Share of requests that did not fail, null without requests. */
  success: number | null;
  /** 99th percentile latency in ms, null without requests. */
  p99: number | null;
  requests: number;
}

/** The latency (ms) below which a share `q` of the requests in `hist` fall. */
export function quantileMs(hist: readonly number[], q: number): number | null {
  const total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const want = q * total;
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    const c = hist[i]!;
    if (seen + c >= want && c > 0) {
      const lo = i === 0 ? 0 : STATS_BUCKETS[i - 1]!;
      const hi = i < STATS_BUCKETS.length ? STATS_BUCKETS[i]! : lo * 2;
      // Linear inside the bucket, as Prometheus' histogram_quantile does.
      return (lo + (hi - lo) * ((want - seen) / c)) * 1000;
    }
    seen += c;
  }
  return STATS_BUCKETS.at(-1)! * 1000;
}

/** The bounded dashboard window. */
export class DashboardWindow {
  readonly #edges = new Map<string, _Edge>();
  readonly #seen = new Map<string, Map<string, _Seen>>();
  readonly #denials: (DenialStats & { node: string })[] = [];
  readonly #certs = new Map<string, { node: string; service: string; not_after: number }>();

  /** Adds one proxy's report received at `now` (epoch ms). */
  record(stats: HeartbeatStats, now: number): void {
    const n = Math.floor(now / BUCKET_MS);
    let seen = this.#seen.get(stats.node);
    const first = seen === undefined;
    if (seen === undefined) {
      if (this.#seen.size >= MAX_REPORTERS) this.#seen.delete(this.#seen.keys().next().value!);
      seen = new Map();
      this.#seen.set(stats.node, seen);
    } else {
      // Most recently heard last, so the bound drops the longest silent proxy.
      this.#seen.delete(stats.node);
      this.#seen.set(stats.node, seen);
    }
    for (const e of stats.edges) {
      const key = `${e.source}\u0000${e.destination}\u0000${e.side}`;
      const before = seen.get(key);
      const now_: _Seen = {
        requests: e.requests,
        errors: e.errors,
        hist: e.buckets,
        rejections: e.rejections,
      };
      if (seen.size < MAX_EDGES || before !== undefined) seen.set(key, now_);
      if (first) continue;
      const reset = before !== undefined && e.requests < before.requests;
      const base = before === undefined || reset
        ? { requests: 0, errors: 0, hist: [], rejections: 0 }
        : before;
      const b = this.#bucket(e.source, e.destination, e.side, n);
      if (b === null) continue;
      b.requests += Math.max(0, e.requests - base.requests);
      b.errors += Math.max(0, e.errors - base.errors);
      b.rejections += Math.max(0, e.rejections - base.rejections);
      for (let i = 0; i < b.hist.length; i++) {
        b.hist[i]! += Math.max(0, (e.buckets[i] ?? 0) - (base.hist[i] ?? 0));
      }
      b.inflight = Math.max(b.inflight, e.inflight);
    }
    for (const d of stats.denials) {
      this.#denials.push({ ...d, node: stats.node });
      if (this.#denials.length > MAX_DENIALS) this.#denials.shift();
    }
    for (const c of stats.certs) {
      const key = `${stats.node}\u0000${c.service}`;
      if (!this.#certs.has(key) && this.#certs.size >= MAX_CERTS) continue;
      this.#certs.set(key, { node: stats.node, service: c.service, not_after: c.not_after });
    }
  }

  #bucket(source: string, destination: string, side: "out" | "in", n: number): _Bucket | null {
    const key = `${source}\u0000${destination}\u0000${side}`;
    let e = this.#edges.get(key);
    if (e === undefined) {
      if (this.#edges.size >= MAX_EDGES) return null;
      e = { source, destination, side, ring: new Array(BUCKETS).fill(null), first: n };
      this.#edges.set(key, e);
    }
    const i = n % BUCKETS;
    let b = e.ring[i];
    if (b === null || b === undefined || b.n !== n) {
      b = {
        n,
        requests: 0,
        errors: 0,
        hist: new Array(STATS_BUCKETS.length + 1).fill(0),
        rejections: 0,
        inflight: 0,
      };
      e.ring[i] = b;
    }
    return b;
  }

  /** The buckets of `e` within the window ending at bucket `n`, oldest first (null: none). */
  #series(e: _Edge, n: number): (_Bucket | null)[] {
    const out: (_Bucket | null)[] = [];
    for (let k = n - BUCKETS + 1; k <= n; k++) {
      const b = e.ring[((k % BUCKETS) + BUCKETS) % BUCKETS];
      out.push(b !== null && b !== undefined && b.n === k ? b : null);
    }
    return out;
  }

  /** Per-service golden signals at `now`: measured at the callee's proxy, else at callers'. */
  signals(now: number): Record<string, ServiceSignals> {
    const n = Math.floor(now / BUCKET_MS);
    const byService = new Map<string, { in: _Edge[]; out: _Edge[] }>();
    for (const e of this.#edges.values()) {
      let s = byService.get(e.destination);
      if (s === undefined) byService.set(e.destination, s = { in: [], out: [] });
      s[e.side].push(e);
    }
    const out: Record<string, ServiceSignals> = {};
    for (const [service, { in: inn, out: outs }] of byService) {
      const edges = inn.length > 0 ? inn : outs;
      const sig: ServiceSignals = {
        t: [],
        rate: [],
        success: [],
        p50: [],
        p95: [],
        p99: [],
        inflight: [],
        rejections: [],
      };
      const series = edges.map((e) => this.#series(e, n));
      const outSeries = outs.map((e) => this.#series(e, n));
      for (let k = 0; k < BUCKETS; k++) {
        let requests = 0, errors = 0, rejections = 0, inflight = 0;
        const hist = new Array(STATS_BUCKETS.length + 1).fill(0);
        for (const s of series) {
          const b = s[k];
          if (!b) continue;
          requests += b.requests;
          errors += b.errors;
          for (let i = 0; i < hist.length; i++) hist[i] += b.hist[i]!;
        }
        // Saturation is the callers' view: their in-flight counts and breaker refusals.
        for (const s of outSeries) {
          const b = s[k];
          if (!b) continue;
          rejections += b.rejections;
          inflight += b.inflight;
        }
        sig.t.push((n - BUCKETS + 1 + k) * BUCKET_MS);
        sig.rate.push(requests / (BUCKET_MS / 1000));
        sig.success.push(requests > 0 ? 1 - errors / requests : null);
        sig.p50.push(quantileMs(hist, 0.5));
        sig.p95.push(quantileMs(hist, 0.95));
        sig.p99.push(quantileMs(hist, 0.99));
        sig.inflight.push(inflight);
        sig.rejections.push(rejections);
      }
      out[service] = sig;
    }
    return out;
  }

  /** Who calls whom over the window at `now`, as the callers' proxies measured it. */
  edges(now: number): EdgeView[] {
    const n = Math.floor(now / BUCKET_MS);
    const out: EdgeView[] = [];
    for (const e of this.#edges.values()) {
      if (e.side !== "out") continue;
      let requests = 0, errors = 0;
      const hist = new Array(STATS_BUCKETS.length + 1).fill(0);
      for (const b of this.#series(e, n)) {
        if (!b) continue;
        requests += b.requests;
        errors += b.errors;
        for (let i = 0; i < hist.length; i++) hist[i] += b.hist[i]!;
      }
      if (requests === 0) continue;
      const covered = n - Math.max(e.first, n - BUCKETS + 1) + 1;
      out.push({
        source: e.source,
        destination: e.destination,
        rate: requests / (covered * BUCKET_MS / 1000),
        success: 1 - errors / requests,
        p99: quantileMs(hist, 0.99),
        requests,
      });
    }
    return out;
  }

  /** The most recent denials, newest first. */
  denials(): (DenialStats & { node: string })[] {
    return [...this.#denials].reverse();
  }

  /** The proxies' certificates and when they expire. */
  certs(): { node: string; service: string; not_after: number }[] {
    return [...this.#certs.values()];
  }
}
