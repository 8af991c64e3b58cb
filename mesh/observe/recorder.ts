/**
 * The record layer: the one place the proxy's request path meets tracing and access logs.
 * The router hands each routed request's decision to {@linkcode Recorder.record}; with neither
 * configured, or with tracing only and the request not sampled, the decision goes back
 * untouched (no span, no object). A recorded request gets one object hooked onto its decision
 * (`RouteDecision.recording`), which the decision calls when it ends: the access line of an
 * unsampled request, or the span (and line) of a sampled one, whose new `traceparent` the
 * decision then sends with every try (`RouteDecision.addRequestHeader`). Only a decision that
 * cannot carry the hook gets a wrapper that forwards every call to the original, adds the
 * `traceparent`, and at the end closes the span and queues the line.
 * @module
 */
import {
  type ClientInfo,
  type Endpoint,
  type ExchangeRecord,
  type ListenerInfo,
  type Outcome,
  ProxyError,
  type RouteDecision,
} from "../forward/types.ts";
import { headerValue, markHopByHop, type RequestHead } from "../http1/mod.ts";
import type { AccessLog } from "./access_log.ts";
import { wallNow } from "./wall_clock.ts";
import { type AccessBase, type AccessEnd, causeOf } from "./access_record.ts";
import type { SpanAttributes, SpanHandle, SpanSink } from "../../common/trace/span_sink.ts";
import {
  formatTraceparent,
  type ParentContext,
  parseB3,
  parseTraceparent,
  sampleRoot,
  type Sampling,
  traceparentSampled,
} from "../../common/trace/trace_context.ts";

/** Which side of a call this proxy is on. */
export type Side = "client" | "server";

/** Options of {@linkcode Recorder}. */
export interface RecorderOptions {
  /** This proxy's node name (in access-log lines). */
  node: string;
  /** Sampling of traces that arrive without one. */
  sampling: Sampling;
  /** The tracer, when `telemetry.otlp` is set. */
  sink: SpanSink | null;
  /** The access log, when `access_log` is set. */
  accessLog: AccessLog | null;
  /** Uniform random in [0, 1). @default Math.random */
  random?: () => number;
  /** Wall clock in epoch ms. @default wallNow (the per-turn clock, see `wall_clock.ts`) */
  now?: () => number;
}

/** What the router knows about a request besides its head and decision. */
export interface CallInfo {
  /** The caller: the local service on the client side, the verified SPIFFE id on the server side. */
  caller: string | null;
  /** The service called: the destination on the client side, the local app on the server side. */
  destination: string;
  /** The service at the other end: the destination (client side) or the caller's (server side). */
  peerService: string;
  /** The SPIFFE id the peer shows or must show, if known. */
  peerIdentity: string | null;
}

/** Tells the recorder who calls whom; asked only for requests that are recorded. */
export interface CallResolver {
  /**
   * The call behind request `head` routed to `d` on `listener`; `peerIdentity` may be left null
   * unless `withIdentity` (only spans name it).
   */
  callInfo(
    d: RouteDecision | ProxyError,
    head: RequestHead,
    listener: ListenerInfo,
    client: ClientInfo | undefined,
    withIdentity?: boolean,
  ): CallInfo;
}

/** Tracing and access logging around routed requests. */
export class Recorder {
  readonly #o: Required<RecorderOptions>;
  /** The end fields of the line being written, reused: lines are encoded synchronously. */
  readonly #end: AccessEnd = {
    duration_ms: 0,
    status: 0,
    bytes_out: 0,
    endpoint: null,
    retries: 0,
    error: null,
  };

  /** Records with the given tracer and access log (either may be null). */
  constructor(opts: RecorderOptions) {
    this.#o = { random: Math.random, now: wallNow, ...opts };
  }

  /** Starts tracing with `sink` (loaded after the data plane started). */
  setSink(sink: SpanSink): void {
    this.#o.sink = sink;
  }

  /**
   * What to hand the forwarder for `head` routed to `d`: `d` itself when nothing is recorded
   * for this request (a local answer is logged at once), else a recording wrapper, which
   * also sends the new `traceparent` on when the request is sampled.
   */
  record(
    d: RouteDecision | ProxyError,
    head: RequestHead,
    listener: ListenerInfo,
    client: ClientInfo | undefined,
    calls: CallResolver,
  ): RouteDecision | ProxyError {
    const side: Side = listener.name === "inbound" ? "server" : "client";
    if (d instanceof ProxyError) {
      if (this.#o.accessLog !== null) {
        this.refused(head, d, side, calls.callInfo(d, head, listener, client));
      }
      return d;
    }
    return this.#wrap(head, d, side, listener, client, calls);
  }

  #wrap(
    head: RequestHead,
    decision: RouteDecision,
    side: Side,
    listener: ListenerInfo,
    client: ClientInfo | undefined,
    calls: CallResolver,
  ): RouteDecision {
    const o = this.#o;
    // The parser flags a head carrying none of the fields read here: most requests.
    const scan = head.recordedFields !== false;
    const tp = scan ? headerValue(head, "traceparent") : null;
    let parent: ParentContext | null = null;
    let sampled = false;
    let traceId: string | null = null;
    if (tp !== null && (o.sink !== null || o.accessLog !== null)) {
      const s = traceparentSampled(tp);
      if (s === 0 && o.accessLog === null) return decision; // passed on as is, flag unchanged
      if (s >= 0) {
        parent = parseTraceparent(tp, headerValue(head, "tracestate"));
        sampled = s === 1 && o.sink !== null;
        traceId = parent!.traceId;
      }
    }
    if (parent === null && o.sink !== null) {
      // Looked up before parsing, so the usual request (no B3 either) allocates nothing.
      const hasB3 = scan &&
        (headerValue(head, "x-b3-traceid") !== null || headerValue(head, "b3") !== null);
      const b3 = hasB3 ? parseB3((n) => headerValue(head, n)) : null;
      // On the inbound every call comes from a skein proxy (or gateway), which has already
      // drawn the sampling decision; one sent without a trace context was not sampled there,
      // so the callee starts no trace of its own (it would be an orphan server span, and
      // the mesh would sample twice its ratio).
      if (b3 !== null) {
        sampled = b3.sampled ?? (side === "client" && sampleRoot(o.sampling, o.random));
        parent = { ...b3, sampled };
        traceId = b3.traceId;
      } else if (side === "client") {
        sampled = sampleRoot(o.sampling, o.random);
      }
    }
    if (!sampled && o.accessLog === null) return decision;
    const startMs = o.now();
    if (!sampled && decision.recording === null) {
      // The usual recorded request: the decision reports its own end, no wrapper in between.
      const call = calls.callInfo(decision, head, listener, client, false);
      decision.recording = new _Line(head, side, call, startMs, traceId, o, this.#end);
      return decision;
    }
    const call = calls.callInfo(decision, head, listener, client, true);
    let span: SpanHandle | null = null;
    let tpLine: string | null = null;
    if (sampled && o.sink !== null) {
      span = o.sink.start(side, `${head.method} ${call.peerService}`, parent, {
        "http.request.method": head.method,
        "url.path": _path(head.target),
        "server.address": head.host ?? "",
        "peer.service": call.peerService,
        "skein.side": side,
      }, startMs);
      traceId = span.traceId;
      // The callee (or app) sees this span as its parent; the caller's header is replaced.
      markHopByHop(head, "traceparent");
      tpLine = `traceparent: ${formatTraceparent(span.traceId, span.spanId)}\r\n`;
    }
    // Read now: a streamed request body may overwrite the head's bytes before the end.
    const base = o.accessLog === null ? null : this.#base(head, side, call, startMs, traceId);
    const c: _Ctx = { o, side, call, base, span };
    if (decision.recording === null && decision.addRequestHeader !== undefined) {
      // Hooked like the unsampled line: the forwarder then sees one kind of decision for every
      // request, so the 1% that are traced do not make its calls on the decision polymorphic.
      if (tpLine !== null) decision.addRequestHeader(tpLine);
      decision.recording = new _Traced(c);
      return decision;
    }
    return new _Recorded(decision, tpLine, c);
  }

  /** Records a request the proxy answered itself at routing (denied, no route, ...). */
  refused(head: RequestHead, err: ProxyError, side: Side, call: CallInfo): void {
    const log = this.#o.accessLog;
    if (log === null) return;
    const now = this.#o.now();
    const tp = head.recordedFields === false ? null : headerValue(head, "traceparent");
    const parent = tp === null ? null : parseTraceparent(tp, null);
    log.writeRecord(this.#base(head, side, call, now, parent?.traceId ?? null), {
      duration_ms: 0,
      status: err.status,
      bytes_out: 0,
      endpoint: null,
      retries: 0,
      error: err.code,
    });
  }

  /** The decision for an opaque TCP connection, recording it in the access log when it ends. */
  wrapTcp(decision: RouteDecision, caller: string | null): RouteDecision {
    const o = this.#o;
    if (o.accessLog === null) return decision;
    const log = o.accessLog;
    const start = o.now();
    let ep: Endpoint | null = null;
    let last: Outcome | null = null;
    let attempts = 0;
    return {
      cluster: decision.cluster,
      timeoutMs: decision.timeoutMs,
      perTryTimeoutMs: decision.perTryTimeoutMs,
      pick: (a, ex) => decision.pick(a, ex),
      retry: (a, out) => decision.retry(a, out),
      onResult: (e, out, ms) => {
        ep = e;
        last = out;
        attempts++;
        decision.onResult(e, out, ms);
      },
      onDone: (status, bytesOut = 0, bytesIn = 0) => {
        decision.onDone?.(status, bytesOut, bytesIn);
        const end = o.now();
        log.write(JSON.stringify({
          type: "tcp",
          node: o.node,
          side: "client",
          start: new Date(start).toISOString(),
          duration_ms: _ms(end - start),
          status,
          bytes_in: bytesIn,
          bytes_out: bytesOut,
          caller,
          destination: decision.cluster,
          endpoint: (ep as Endpoint | null)?.key ?? null,
          retries: Math.max(0, attempts - 1),
          error: status === 200 ? null : causeOf(status === 0 ? 502 : status, attempts, last),
        }));
      },
    };
  }

  /** The fields known when a request starts. */
  #base(
    head: RequestHead,
    side: Side,
    call: CallInfo,
    startMs: number,
    traceId: string | null,
  ): AccessBase {
    return {
      type: "http",
      node: this.#o.node,
      side,
      start: startMs,
      method: head.method,
      path: _path(head.target),
      authority: head.host,
      bytes_in: head.chunked ? null : Math.max(0, head.contentLength),
      caller: call.caller,
      destination: call.destination,
      trace_id: traceId,
      request_id: head.recordedFields === false ? null : headerValue(head, "x-request-id"),
    };
  }
}

/**
 * An access-log line in the making: the fields known when the request starts (read then, as a
 * streamed body may overwrite the head's bytes), written when the decision reports the end.
 */
class _Line implements AccessBase, ExchangeRecord {
  readonly type = "http" as const;
  readonly node: string;
  readonly side: Side;
  readonly start: number;
  readonly method: string;
  readonly path: string;
  readonly authority: string | null;
  readonly bytes_in: number | null;
  readonly caller: string | null;
  readonly destination: string;
  readonly trace_id: string | null;
  readonly request_id: string | null;
  readonly #o: Required<RecorderOptions>;
  readonly #end: AccessEnd;

  constructor(
    head: RequestHead,
    side: Side,
    call: CallInfo,
    startMs: number,
    traceId: string | null,
    o: Required<RecorderOptions>,
    end: AccessEnd,
  ) {
    this.node = o.node;
    this.side = side;
    this.start = startMs;
    this.method = head.method;
    this.path = _path(head.target);
    this.authority = head.host;
    this.bytes_in = head.chunked ? null : Math.max(0, head.contentLength);
    this.caller = call.caller;
    this.destination = call.destination;
    this.trace_id = traceId;
    this.request_id = head.recordedFields === false ? null : headerValue(head, "x-request-id");
    this.#o = o;
    this.#end = end;
  }

  done(
    status: number,
    bytesOut: number,
    _bytesIn: number | undefined,
    tries: number,
    ep: Endpoint | null,
    last: Outcome | null,
  ): void {
    const e = this.#end;
    e.duration_ms = _ms(this.#o.now() - this.start);
    e.status = status;
    e.bytes_out = bytesOut;
    e.endpoint = ep?.key ?? null;
    e.retries = Math.max(0, tries - 1);
    e.error = causeOf(status, tries, last);
    this.#o.accessLog!.writeRecord(this, e);
  }
}

/**
 * A duration in whole ms, as the difference of two `Date.now()` readings gave it: the clock has
 * sub-millisecond fractions, and an integer is written digit by digit where a fraction is not.
 */
function _ms(d: number): number {
  return Math.max(0, Math.round(d));
}

/** The path of a request target, without the query. */
function _path(target: string): string {
  const q = target.indexOf("?");
  return q < 0 ? target : target.slice(0, q);
}

interface _Ctx {
  o: Required<RecorderOptions>;
  side: Side;
  call: CallInfo;
  base: AccessBase | null;
  span: SpanHandle | null;
}

/**
 * Ends a recorded exchange: closes its span (if traced) and writes its line (if logged), after
 * `attempts` tries, the last to `ep` ending in `last`.
 */
function _finish(
  c: _Ctx,
  status: number,
  bytesOut: number,
  attempts: number,
  ep: Endpoint | null,
  last: Outcome | null,
): void {
  const end = c.o.now();
  const retries = Math.max(0, attempts - 1);
  const error = causeOf(status, attempts, last);
  const endpoint = ep?.key ?? null;
  if (c.span !== null) {
    const attrs: SpanAttributes = {
      "http.response.status_code": status,
      "skein.retries": retries,
    };
    if (endpoint !== null) {
      attrs["network.peer.address"] = endpoint;
      attrs["server.endpoint"] = endpoint;
    }
    const id = c.side === "client" ? ep?.identity ?? c.call.peerIdentity : c.call.caller;
    if (id !== null && id !== undefined) attrs["skein.peer.spiffe_id"] = id;
    if (error !== null) attrs["skein.error"] = error;
    if (status >= 500 || status === 0) attrs["error"] = true;
    c.span.end(attrs, status >= 500 || status === 0, end);
  }
  if (c.base !== null) {
    c.o.accessLog!.writeRecord(c.base, {
      duration_ms: _ms(end - c.base.start),
      status,
      bytes_out: bytesOut,
      endpoint,
      retries,
      error,
    });
  }
}

/** A traced (or otherwise fully recorded) exchange, hooked onto a decision that reports its end. */
class _Traced implements ExchangeRecord {
  readonly #c: _Ctx;

  constructor(c: _Ctx) {
    this.#c = c;
  }

  done(
    status: number,
    bytesOut: number,
    _bytesIn: number | undefined,
    tries: number,
    ep: Endpoint | null,
    last: Outcome | null,
  ): void {
    _finish(this.#c, status, bytesOut, tries, ep, last);
  }
}

/**
 * A decision that records its exchange; every policy call and field read goes to the wrapped
 * one, read when asked (capability routing changes the extra headers at each pick, the router
 * sets the re-check after routing), so the wrapper changes nothing but the trace header.
 */
class _Recorded implements RouteDecision {
  readonly #d: RouteDecision;
  /** The `traceparent` line sent on when sampled, else null. */
  readonly #tp: string | null;
  readonly #c: _Ctx;
  #attempts = 0;
  #ep: Endpoint | null = null;
  #last: Outcome | null = null;
  /** The wrapped decision's extra headers last seen, and them with the trace line appended. */
  #extraIn: string | undefined = undefined;
  #extraOut: string | undefined = undefined;

  constructor(d: RouteDecision, tp: string | null, c: _Ctx) {
    this.#d = d;
    this.#tp = tp;
    this.#c = c;
  }

  /** The wrapped decision's cluster. */
  get cluster(): string {
    return this.#d.cluster;
  }

  /** The wrapped decision's overall budget. */
  get timeoutMs(): number {
    return this.#d.timeoutMs;
  }

  /** The wrapped decision's per-try budget. */
  get perTryTimeoutMs(): number {
    return this.#d.perTryTimeoutMs;
  }

  /** The wrapped decision's subset. */
  get subset(): string | undefined {
    return this.#d.subset;
  }

  /** The wrapped decision's mirror target. */
  get mirror(): RouteDecision["mirror"] {
    return this.#d.mirror;
  }

  /** The wrapped decision's fault delay. */
  get delayMs(): number | undefined {
    return this.#d.delayMs;
  }

  /** The wrapped decision's re-check of an upgraded connection's caller. */
  get stillAllowed(): (() => boolean) | undefined {
    return this.#d.stillAllowed;
  }

  /** The wrapped decision's current extra headers, plus the trace line when sampled. */
  get extraRequestHeaders(): string | undefined {
    const inner = this.#d.extraRequestHeaders;
    if (this.#tp === null) return inner;
    // Concatenated once per distinct inner value: retries to the same endpoint reuse it.
    if (this.#extraOut === undefined || inner !== this.#extraIn) {
      this.#extraIn = inner;
      this.#extraOut = (inner ?? "") + this.#tp;
    }
    return this.#extraOut;
  }

  pick(attempt: number, exclude: ReadonlySet<string>): Endpoint | null {
    return this.#d.pick(attempt, exclude);
  }

  retry(attempt: number, outcome: Outcome): number | null {
    return this.#d.retry(attempt, outcome);
  }

  onResult(ep: Endpoint, outcome: Outcome, latencyMs: number): void {
    this.#attempts++;
    this.#ep = ep;
    this.#last = outcome;
    this.#d.onResult(ep, outcome, latencyMs);
  }

  onDone(status: number, bytesOut = 0, bytesIn?: number): void {
    this.#d.onDone?.(status, bytesOut, bytesIn);
    _finish(this.#c, status, bytesOut, this.#attempts, this.#ep, this.#last);
  }
}
