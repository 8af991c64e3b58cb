/**
 * Builds a data plane's record layer from proxy.yaml: the access log (with SIGHUP reopening
 * its file), and the OpenTelemetry tracer, whose npm modules are imported only when
 * `telemetry.otlp` is set. Also exports both's counters as `skein_` metrics.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import type { Registry } from "../../common/metrics.ts";
// Not config/mod.ts: the barrel would load the YAML loader into every data-plane worker.
import type { ProxyConfig } from "../../config/proxy_schema.ts";
import { AccessLog } from "./access_log.ts";
import { Recorder } from "./recorder.ts";
import type { SpanSink } from "../../common/trace/span_sink.ts";
import { DEFAULT_SAMPLING } from "../../common/trace/trace_context.ts";

/** A data plane's tracing and access logging. */
export class Observability {
  /** What the router hands requests to. */
  readonly recorder: Recorder;
  /** Resolves once the tracer is loaded (at once without `telemetry.otlp`). */
  readonly ready: Promise<void>;
  readonly #log: AccessLog | null;
  readonly #sighup: (() => void) | null;
  #sink: SpanSink | null = null;
  #closed = false;

  private constructor(cfg: ProxyConfig, logger: Logger) {
    const path = cfg.access_log?.path;
    this.#log = path === undefined
      ? null
      : new AccessLog(path, { logger: logger.with({ component: "access_log" }) });
    this.#sighup = null;
    if (this.#log !== null && path !== "stdout") {
      const log = this.#log;
      // logrotate moves the file and sends SIGHUP: the next batch goes to a new file.
      const reopen = () => log.reopen();
      try {
        Deno.addSignalListener("SIGHUP", reopen);
        this.#sighup = reopen;
      } catch (e) {
        logger.warn("cannot listen for SIGHUP; the access log is not reopened on it", {
          err: e as Error,
        });
      }
    }
    this.recorder = new Recorder({
      node: cfg.node,
      sampling: cfg.telemetry.sampling ?? DEFAULT_SAMPLING,
      sink: null,
      accessLog: this.#log,
    });
    const otlp = cfg.telemetry.otlp;
    this.ready = otlp === undefined ? Promise.resolve() : this.#loadTracer(cfg, otlp, logger);
  }

  /** Sets up what `cfg` asks for; the tracer loads in the background (see `ready`). */
  static create(cfg: ProxyConfig, logger: Logger): Observability {
    return new Observability(cfg, logger);
  }

  async #loadTracer(cfg: ProxyConfig, otlp: string, logger: Logger): Promise<void> {
    try {
      // Loaded only here: proxies without telemetry.otlp never hold the exporter.
      const { createOtlpSink } = await import("../../common/trace/otlp_sink.ts");
      if (this.#closed) return;
      this.#sink = createOtlpSink({
        endpoint: otlp,
        serviceName: cfg.services[0]?.name ?? cfg.node,
        resource: { "skein.node": cfg.node },
      });
      this.recorder.setSink(this.#sink);
      logger.info("tracing on", {
        otlp,
        sampling: String(cfg.telemetry.sampling ?? DEFAULT_SAMPLING),
      });
    } catch (e) {
      logger.error("cannot load the tracer; requests are not traced", { err: e as Error });
    }
  }

  /** Registers the access log and span export counters in `registry`. */
  registerMetrics(registry: Registry): void {
    const lines = registry.counter({
      name: "skein_access_log_lines_total",
      help: "Access log lines by result: written, or dropped (queue full or write failed).",
      labelNames: ["result"],
    });
    const errors = registry.counter({
      name: "skein_access_log_errors_total",
      help: "Failed opens and writes of the access log file.",
    });
    const spans = registry.counter({
      name: "skein_trace_spans_total",
      help: "Spans by export result: exported, or dropped (queue full or collector failed).",
      labelNames: ["result"],
    });
    const seen = { written: 0, dropped: 0, errors: 0, exported: 0, spansDropped: 0 };
    const bump = (c: { inc(n: number): void }, key: keyof typeof seen, v: number) => {
      if (v > seen[key]) c.inc(v - seen[key]);
      seen[key] = v;
    };
    const written = lines.labels("written");
    const dropped = lines.labels("dropped");
    const exported = spans.labels("exported");
    const spansDropped = spans.labels("dropped");
    registry.onCollect(() => {
      const l = this.#log?.stats ?? { written: 0, dropped: 0, errors: 0 };
      bump(written, "written", l.written);
      bump(dropped, "dropped", l.dropped);
      bump(errors, "errors", l.errors);
      const s = this.#sink?.stats() ?? { exported: 0, dropped: 0 };
      bump(exported, "exported", s.exported);
      bump(spansDropped, "spansDropped", s.dropped);
    });
  }

  /** Flushes the access log and the span queue (bounded by the exporter's timeout), and stops. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sighup !== null) Deno.removeSignalListener("SIGHUP", this.#sighup);
    await Promise.all([this.#log?.close(), this.#sink?.shutdown()]);
  }
}
