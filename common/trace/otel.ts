/**
 * The OpenTelemetry {@linkcode SpanSink}: spans made with the npm SDK (`@opentelemetry/api`
 * with `@opentelemetry/sdk-trace`) and exported over OTLP/HTTP by
 * `@opentelemetry/exporter-trace-otlp-http`, batched through a bounded queue of our own so
 * that a slow or absent collector costs dropped (and counted) spans, never memory or
 * request time. Loaded with a dynamic import only when `telemetry.otlp` is set.
 * @module
 */
import { type Context, ROOT_CONTEXT, SpanKind, trace, TraceFlags } from "@opentelemetry/api";
import {
  AlwaysOnSampler,
  type ReadableSpan,
  type SpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import type { SpanAttributes, SpanHandle, SpanSink, SpanSinkStats } from "./span_sink.ts";

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
}

/** The collector URL that receives traces, from the configured base URL. */
export function tracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, "");
  return base.endsWith("/v1/traces") ? base : `${base}/v1/traces`;
}

/**
 * Batches ended spans into a bounded queue and exports one batch at a time: while an export
 * is in flight (a slow collector) new spans queue, and once the queue is full they are dropped
 * and counted. The SDK's BatchSpanProcessor also drops, but does not count what it drops.
 */
class _BoundedBatcher implements SpanProcessor {
  readonly #exporter: OTLPTraceExporter;
  readonly #max: number;
  readonly #batch: number;
  readonly #delay: number;
  #queue: ReadableSpan[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #inFlight: Promise<void> | null = null;
  #stopped = false;
  readonly stats: SpanSinkStats = { exported: 0, dropped: 0 };

  constructor(exporter: OTLPTraceExporter, max: number, batch: number, delay: number) {
    this.#exporter = exporter;
    this.#max = max;
    this.#batch = batch;
    this.#delay = delay;
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#stopped || this.#queue.length >= this.#max) {
      this.stats.dropped++;
      return;
    }
    this.#queue.push(span);
    if (this.#queue.length >= this.#batch) this.#kick();
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#kick();
      }, this.#delay);
      Deno.unrefTimer(this.#timer as unknown as number);
    }
  }

  #kick(): void {
    if (this.#inFlight !== null) return;
    this.#inFlight = this.#exportAll().finally(() => {
      this.#inFlight = null;
      if (this.#queue.length > 0 && this.#timer === null && !this.#stopped) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#kick();
        }, this.#delay);
        Deno.unrefTimer(this.#timer as unknown as number);
      }
    });
  }

  async #exportAll(): Promise<void> {
    while (this.#queue.length > 0) {
      const spans = this.#queue.splice(0, this.#batch);
      const ok = await new Promise<boolean>((resolve) => {
        try {
          this.#exporter.export(spans, (r) => resolve(r.code === 0));
        } catch {
          resolve(false);
        }
      });
      if (ok) this.stats.exported += spans.length;
      else {
        this.stats.dropped += spans.length;
        return; // the collector failed: wait for the next timer before trying again
      }
    }
  }

  async forceFlush(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    while (this.#inFlight !== null) await this.#inFlight;
    if (this.#queue.length > 0) {
      this.#kick();
      await this.#inFlight;
    }
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.#stopped = true;
    await this.#exporter.shutdown();
  }
}

const _KINDS = { client: SpanKind.CLIENT, server: SpanKind.SERVER } as const;

/** Creates the OTLP/HTTP span sink (see the module doc). */
export function createOtlpSink(opts: OtlpSinkOptions): SpanSink {
  const timeout = opts.exportTimeoutMs ?? DEFAULT_EXPORT_TIMEOUT_MS;
  const exporter = new OTLPTraceExporter({ url: tracesUrl(opts.endpoint), timeoutMillis: timeout });
  const batcher = new _BoundedBatcher(
    exporter,
    opts.maxQueue ?? DEFAULT_MAX_QUEUE,
    opts.maxBatch ?? DEFAULT_MAX_BATCH,
    opts.exportDelayMs ?? DEFAULT_EXPORT_DELAY_MS,
  );
  const provider = new TracerProvider({
    // The record layer already decided: only sampled requests get here.
    sampler: new AlwaysOnSampler(),
    resource: resourceFromAttributes({ "service.name": opts.serviceName, ...opts.resource }),
    spanProcessors: [batcher],
  });
  const tracer = provider.getTracer("skein");
  return {
    start(kind, name, parent, attrs, startMs): SpanHandle {
      let ctx: Context = ROOT_CONTEXT;
      if (parent !== null) {
        ctx = trace.setSpanContext(ROOT_CONTEXT, {
          traceId: parent.traceId,
          spanId: parent.spanId,
          traceFlags: TraceFlags.SAMPLED,
          isRemote: true,
        });
      }
      const span = tracer.startSpan(
        name,
        { kind: _KINDS[kind], attributes: attrs, startTime: startMs },
        ctx,
      );
      const sc = span.spanContext();
      return {
        traceId: sc.traceId,
        spanId: sc.spanId,
        end(more, error, endMs, name) {
          if (name !== undefined) span.updateName(name);
          span.setAttributes(more);
          if (error) span.setStatus({ code: 2 });
          span.end(endMs);
        },
      };
    },
    stats: () => ({ ...batcher.stats }),
    shutdown: () => provider.shutdown(),
  };
}
