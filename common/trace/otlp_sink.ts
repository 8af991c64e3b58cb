/**
 * The OTLP/HTTP {@linkcode SpanSink}: spans are plain records, batched through a bounded queue
 * and posted as OTLP/JSON to `<otlp>/v1/traces`, one export at a time, so a slow or absent
 * collector costs dropped (and counted) spans, never memory or request time. The npm SDK did
 * the same job at about 24 µs of CPU per span and 16 MB per isolate (`docs/observability.md`);
 * a proxy that already decided sampling and holds every attribute needs none of its machinery.
 * @module
 */
import type { SpanAttributes, SpanHandle, SpanSink, SpanSinkStats } from "./span_sink.ts";
import type { ParentContext } from "./trace_context.ts";

/** Most ended spans waiting for export; beyond it spans are dropped. */
export const DEFAULT_MAX_QUEUE = 2048;
/** Most spans per export request. */
export const DEFAULT_MAX_BATCH = 512;
/** How long an ended span may wait for its batch, in ms. */
export const DEFAULT_EXPORT_DELAY_MS = 1000;
/** How long one export request may take, in ms. */
export const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;

/** Options of {@linkcode createOtlpSink}. */
export interface OtlpSinkOptions {
  /** The collector's base URL (`http://collector:4318`); spans go to `<url>/v1/traces`. */
  endpoint: string;
  /** The `service.name` resource attribute. */
  serviceName: string;
  /** Further resource attributes (e.g. `skein.node`). */
  resource?: SpanAttributes;
  /** @default DEFAULT_MAX_QUEUE */
  maxQueue?: number;
  /** @default DEFAULT_MAX_BATCH */
  maxBatch?: number;
  /** @default DEFAULT_EXPORT_DELAY_MS */
  exportDelayMs?: number;
  /** @default DEFAULT_EXPORT_TIMEOUT_MS */
  exportTimeoutMs?: number;
  /** Sends one export body; resolves whether the collector took it. @default a `fetch` POST */
  post?: (url: string, body: string, timeoutMs: number) => Promise<boolean>;
}

/** The collector URL that receives traces, from the configured base URL. */
export function tracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, "");
  return base.endsWith("/v1/traces") ? base : `${base}/v1/traces`;
}

/** OTLP's `SpanKind` numbers. */
const _KIND = { server: 2, client: 3 } as const;

/** One ended span, as exported. */
export interface FinishedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: 2 | 3;
  startMs: number;
  endMs: number;
  /** The attributes given at start. */
  attrs: SpanAttributes;
  /** The attributes given at the end (these win over `attrs`); merged only when exported. */
  more: SpanAttributes;
  error: boolean;
}

const _HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Random ids drawn from a pooled buffer: one `getRandomValues` call per 512 spans. */
class _Ids {
  readonly #pool = new Uint8Array(8192);
  #at = this.#pool.length;

  /** `n` random bytes as hex, never all zero (an invalid id in W3C and OTLP). */
  hex(n: number): string {
    for (;;) {
      if (this.#at + n > this.#pool.length) {
        crypto.getRandomValues(this.#pool);
        this.#at = 0;
      }
      let s = "";
      let any = 0;
      for (let i = 0; i < n; i++) {
        const b = this.#pool[this.#at++]!;
        any |= b;
        s += _HEX[b];
      }
      if (any !== 0) return s;
    }
  }
}

/** An attribute value in OTLP/JSON's `AnyValue` form. */
function _value(v: string | number | boolean): Record<string, unknown> {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  return Number.isSafeInteger(v) ? { intValue: v } : { doubleValue: v };
}

/** Attributes in OTLP/JSON's `KeyValue` list form. */
function _attributes(...groups: SpanAttributes[]): { key: string; value: unknown }[] {
  const out: { key: string; value: unknown }[] = [];
  for (const g of groups) {
    for (const key in g) out.push({ key, value: _value(g[key]!) });
  }
  return out;
}

/** Epoch ms as OTLP's decimal nanosecond string (exact for whole and fractional ms). */
function _nanos(ms: number): string {
  const whole = Math.floor(ms);
  const frac = Math.round((ms - whole) * 1e6);
  return frac === 0 ? `${whole}000000` : `${whole}${String(frac).padStart(6, "0")}`;
}

/** The OTLP/JSON body of one export (`ExportTraceServiceRequest`). */
export function exportBody(resource: SpanAttributes, spans: readonly FinishedSpan[]): string {
  return JSON.stringify({
    resourceSpans: [{
      resource: { attributes: _attributes(resource) },
      scopeSpans: [{
        scope: { name: "skein" },
        spans: spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          ...(s.parentSpanId === "" ? {} : { parentSpanId: s.parentSpanId }),
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: _nanos(s.startMs),
          endTimeUnixNano: _nanos(s.endMs),
          attributes: _attributes({ ...s.attrs, ...s.more }),
          status: s.error ? { code: 2 } : {},
        })),
      }],
    }],
  });
}

/** An export with no spans: how a sink whose last export failed asks whether the collector is back. */
export const EMPTY_EXPORT_BODY = '{"resourceSpans":[]}';

/** POSTs an OTLP/JSON body; any 2xx is success, anything else (or no answer in time) is not. */
async function _fetchPost(url: string, body: string, timeoutMs: number): Promise<boolean> {
  try {
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/** Creates the OTLP/HTTP span sink (see the module doc). */
export function createOtlpSink(opts: OtlpSinkOptions): SpanSink {
  const url = tracesUrl(opts.endpoint);
  const resource: SpanAttributes = { "service.name": opts.serviceName, ...opts.resource };
  const max = opts.maxQueue ?? DEFAULT_MAX_QUEUE;
  const batch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  const delay = opts.exportDelayMs ?? DEFAULT_EXPORT_DELAY_MS;
  const timeout = opts.exportTimeoutMs ?? DEFAULT_EXPORT_TIMEOUT_MS;
  const post = opts.post ?? _fetchPost;
  const ids = new _Ids();
  const stats: SpanSinkStats = { exported: 0, dropped: 0 };
  let queue: FinishedSpan[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let inFlight: Promise<void> | null = null;
  let stopped = false;

  const arm = () => {
    if (timer !== null || stopped) return;
    timer = setTimeout(() => {
      timer = null;
      kick();
    }, delay);
    Deno.unrefTimer(timer as unknown as number);
  };
  /** Whether the last export failed: the next one first asks with an empty body. */
  let failing = false;
  const exportAll = async () => {
    while (queue.length > 0) {
      const spans = queue.length <= batch ? queue : queue.slice(0, batch);
      queue = queue.length <= batch ? [] : queue.slice(batch);
      // A collector that is down stays down for a while: it costs a probe, not a batch's JSON.
      const ok = (!failing || await post(url, EMPTY_EXPORT_BODY, timeout)) &&
        await post(url, exportBody(resource, spans), timeout);
      failing = !ok;
      if (ok) stats.exported += spans.length;
      else {
        stats.dropped += spans.length;
        return; // the collector failed: wait for the next timer before trying again
      }
    }
  };
  const kick = () => {
    if (inFlight !== null) return;
    inFlight = exportAll().finally(() => {
      inFlight = null;
      if (queue.length > 0) arm();
    });
  };
  const ended = (s: FinishedSpan) => {
    if (stopped || queue.length >= max) {
      stats.dropped++;
      return;
    }
    queue.push(s);
    if (queue.length >= batch) kick();
    else arm();
  };

  return {
    start(kind, name, parent: ParentContext | null, attrs, startMs): SpanHandle {
      const traceId = parent?.traceId ?? ids.hex(16);
      const spanId = ids.hex(8);
      let done = false;
      return {
        traceId,
        spanId,
        end(more, error, endMs, rename) {
          if (done) return;
          done = true;
          ended({
            traceId,
            spanId,
            parentSpanId: parent?.spanId ?? "",
            name: rename ?? name,
            kind: _KIND[kind],
            startMs,
            endMs,
            // Kept apart: a collector that is down never needs them merged.
            attrs,
            more,
            error,
          });
        },
      };
    },
    stats: () => ({ ...stats }),
    async shutdown() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      while (inFlight !== null) await inFlight;
      if (queue.length > 0) {
        kick();
        await inFlight;
      }
      stopped = true;
    },
  };
}
