/**
 * What the record layer needs from a tracer: start a span under a parent, learn its ids (for
 * the `traceparent` sent on), end it with attributes. The OTLP exporter (`otlp_sink.ts`) is
 * loaded only when `telemetry.otlp` is set, so proxies without it never load it.
 * @module
 */
import type { ParentContext } from "./trace_context.ts";

/** Span attribute values. */
export type SpanAttributes = Record<string, string | number | boolean>;

/** A started span. */
export interface SpanHandle {
  /** 32 hex digits. */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
  /**
   * Ends the span at `endMs` (epoch ms) with more attributes; `error` marks it failed;
   * `name`, when given, renames it (e.g. after the matched route).
   */
  end(attrs: SpanAttributes, error: boolean, endMs: number, name?: string): void;
}

/** Export counters of a {@linkcode SpanSink}. */
export interface SpanSinkStats {
  /** Spans handed to the exporter that it accepted. */
  exported: number;
  /** Spans dropped: the queue was full (collector slow or down) or an export failed. */
  dropped: number;
}

/** A tracer and its exporter. */
export interface SpanSink {
  /**
   * Starts a span of `kind` named `name` at `startMs` (epoch ms), child of `parent` or a new
   * root trace when null.
   */
  start(
    kind: "client" | "server",
    name: string,
    parent: ParentContext | null,
    attrs: SpanAttributes,
    startMs: number,
  ): SpanHandle;
  /** The export counters so far. */
  stats(): SpanSinkStats;
  /** Exports what is queued (bounded wait) and stops. */
  shutdown(): Promise<void>;
}
