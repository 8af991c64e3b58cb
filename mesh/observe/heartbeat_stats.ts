/**
 * Builds the proxy's dashboard report ({@linkcode HeartbeatStats}) from what it already has:
 * its merged Prometheus exposition, its destinations' in-flight counts, the denials its audit
 * log saw and its certificates. Pure: nothing here touches the request path.
 * @module
 */
import {
  type DenialStats,
  type EdgeStats,
  type HeartbeatStats,
  MAX_STATS_CERTS,
  MAX_STATS_DENIALS,
  MAX_STATS_EDGES,
  STATS_BUCKETS,
} from "../../common/heartbeat_stats.ts";
import type { LogFields, Logger } from "../../common/log.ts";

const _LINE = /^(skein_[a-z_]+)\{([^}]*)\} ([0-9.e+-]+|NaN|\+Inf)$/;
const _LABEL = /([a-z_]+)="((?:[^"\\]|\\.)*)"/g;

function _labels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(_LABEL)) out[m[1]!] = m[2]!;
  return out;
}

/** Edges from the proxy's exposition text, with in-flight counts per destination. */
export function edgesFromMetrics(
  text: string,
  inflight: ReadonlyMap<string, number>,
): EdgeStats[] {
  const edges = new Map<string, EdgeStats & { cum: number[] }>();
  const rejections = new Map<string, number>();
  const edge = (l: Record<string, string>) => {
    const side = l.route === "inbound" ? "in" : "out";
    const key = `${l.source}\u0000${l.destination}\u0000${side}`;
    let e = edges.get(key);
    if (e === undefined) {
      e = {
        source: l.source ?? "",
        destination: l.destination ?? "",
        side,
        requests: 0,
        errors: 0,
        buckets: [],
        inflight: 0,
        rejections: 0,
        cum: new Array(STATS_BUCKETS.length + 1).fill(0),
      };
      edges.set(key, e);
    }
    return e;
  };
  for (const line of text.split("\n")) {
    const m = _LINE.exec(line);
    if (m === null) continue;
    const [, name, raw, v] = m;
    const value = Number(v);
    if (!Number.isFinite(value) && v !== "+Inf") continue;
    const l = _labels(raw!);
    if (name === "skein_requests_total") {
      const e = edge(l);
      e.requests += value;
      if (l.status_class === "5xx" || l.status_class === "error") e.errors += value;
    } else if (name === "skein_request_duration_seconds_bucket") {
      const le = l.le === "+Inf" ? Infinity : Number(l.le);
      const i = le === Infinity ? STATS_BUCKETS.length : STATS_BUCKETS.indexOf(le);
      if (i >= 0) edge(l).cum[i]! += value;
    } else if (name === "skein_circuit_breaker_rejections_total") {
      const d = l.destination ?? "";
      rejections.set(d, (rejections.get(d) ?? 0) + value);
    }
  }
  const out: EdgeStats[] = [];
  for (const e of edges.values()) {
    const { cum, ...rest } = e;
    rest.buckets = cum.map((c, i) => Math.max(0, c - (i > 0 ? cum[i - 1]! : 0)));
    if (rest.side === "out") {
      rest.inflight = inflight.get(rest.destination) ?? 0;
      rest.rejections = rejections.get(rest.destination) ?? 0;
    }
    out.push(rest);
    if (out.length >= MAX_STATS_EDGES) break;
  }
  return out;
}

/** Keeps the most recent authorization denials seen in the proxy's audit log. */
export class DenialTap {
  readonly #recent: DenialStats[] = [];
  readonly #now: () => number;

  /** Starts empty. */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A logger that passes everything to `inner` and notes the audit lines of denials. */
  tap(inner: Logger, bound: LogFields = {}): Logger {
    const note = (msg: string, f?: LogFields) => {
      if (msg !== "authz" || bound.component !== "audit" && f?.component !== "audit") return;
      const all = { ...bound, ...f };
      if (all.allowed !== false && all.decision !== "deny") return;
      this.#recent.push({
        at: this.#now(),
        caller: all.caller === undefined || all.caller === null ? null : String(all.caller),
        service: String(all.service ?? ""),
        method: String(all.method ?? ""),
        path: String(all.path ?? "").slice(0, 256),
        reason: String(all.reason ?? ""),
      });
      if (this.#recent.length > MAX_STATS_DENIALS) this.#recent.shift();
    };
    return {
      debug: (m, f) => inner.debug(m, f),
      info: (m, f) => {
        note(m, f);
        inner.info(m, f);
      },
      warn: (m, f) => {
        note(m, f);
        inner.warn(m, f);
      },
      error: (m, f) => inner.error(m, f),
      with: (f) => this.tap(inner.with(f), { ...bound, ...f }),
      enabled: (l) => inner.enabled(l),
    };
  }

  /** The denials noted since the last call (then forgotten: each is reported once). */
  take(): DenialStats[] {
    return this.#recent.splice(0, this.#recent.length);
  }
}

/** The report for one heartbeat. */
export function buildHeartbeatStats(
  node: string,
  metricsText: string,
  inflight: ReadonlyMap<string, number>,
  denials: DenialStats[],
  certs: ReadonlyMap<string, number>,
): HeartbeatStats {
  return {
    node,
    edges: edgesFromMetrics(metricsText, inflight),
    denials: denials.slice(-MAX_STATS_DENIALS),
    certs: [...certs].slice(0, MAX_STATS_CERTS).map(([service, notAfter]) => ({
      service,
      not_after: notAfter,
    })),
  };
}
