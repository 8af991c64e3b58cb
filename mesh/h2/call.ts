/**
 * One HTTP/2 request (one stream) through the proxy, layer by layer as `request_path.ts` does
 * for HTTP/1, on the same {@linkcode Router} and {@linkcode RouteDecision}: route (authorize,
 * limit, Route rules, breaker), fault delay, body (kept for replay while small), balance (per
 * request, so the streams of one client connection spread over the endpoints), try, retry,
 * relay (trailers included), record.
 *
 * gRPC calls (`content-type: application/grpc…`) differ in four ways: `grpc-timeout` is the
 * call's deadline (answered `DEADLINE_EXCEEDED`); a trailers-only `grpc-status: 14`
 * (UNAVAILABLE) is retried like a connect failure, since gRPC defines it as not processed;
 * the final `grpc-status` decides the status counted in metrics, traces and outlier detection;
 * and errors the proxy generates are trailers-only gRPC responses (HTTP 200, `grpc-status`,
 * `grpc-message`).
 * @module
 */
import {
  type ClientInfo,
  type CoarseTimer,
  type CoarseTimers,
  type Endpoint,
  type ListenerInfo,
  mayRetry,
  noEndpointError,
  type Outcome,
  outcomeToProxyError,
  ProxyError,
  type RouteDecision,
  type Router,
} from "../forward/mod.ts";
import { NO_EXCLUSION } from "../forward/exchange.ts";
import { type HeadLimits, HttpParseError, isIdempotent } from "../http1/mod.ts";
import { answerLocally, grpcTrailers } from "./answers.ts";
import { BodyTap, NO_BODY } from "./body_tap.ts";
import { ErrorCode } from "./wire/frames.ts";
import type { H2Stream } from "./wire/stream.ts";
import type { Upstreams, UpstreamSession, UpstreamStream } from "./upstream.ts";
import {
  formatGrpcTimeout,
  GrpcStatus,
  grpcStatusIn,
  httpStatusOfGrpc,
  isGrpc,
  parseGrpcTimeout,
} from "./grpc.ts";
import {
  forwardedHeaders,
  type H2Headers,
  H2RequestError,
  relayedHeaders,
  requestHeadOf,
  wantsTrailers,
} from "./headers.ts";

const {
  CANCEL: NGHTTP2_CANCEL,
  REFUSED_STREAM: NGHTTP2_REFUSED_STREAM,
  INTERNAL_ERROR: NGHTTP2_INTERNAL_ERROR,
  NO_ERROR: NGHTTP2_NO_ERROR,
} = ErrorCode;

/** What a call needs from the data plane around it. */
export interface CallDeps {
  /** Decides where each request goes (the data plane's router). */
  router: Router;
  /** This proxy's node name (`x-skein-proxy` on answers it makes). */
  node: string;
  /** Head limits the synthesized HTTP/1 head is held to. */
  limits: HeadLimits;
  /** Largest request body kept so that the request can be replayed, in bytes. */
  maxRetryBodyBytes: number;
  /** Millisecond clock. */
  now: () => number;
  /** Counts retries (the forwarder's `retries` counter). */
  onRetry?: () => void;
  /**
   * Per-try and deadline timers, checked by one interval (a timer per request cost measurable
   * CPU, as on the HTTP/1 path); `now` must be its clock.
   */
  timers: CoarseTimers;
}

/** The connection a call arrived on. */
export interface CallConn {
  /** The listener it arrived on. */
  listener: ListenerInfo;
  /** The client as the router sees it. */
  client: ClientInfo;
  /** Appended to `x-forwarded-for`, or null. */
  clientAddr: string | null;
  /** The inbound's `x-skein-caller` line; undefined elsewhere. */
  callerLine: string | null | undefined;
  /** Sessions to the endpoints this listener's calls go to. */
  sessions: Upstreams;
  /**
   * Where calls to a destination that speaks HTTP/1.1 go instead (the inbound's local apps
   * declared `protocol: http`); undefined: every destination speaks HTTP/2.
   */
  h1?: { upstreams: Upstreams; speaksH1(cluster: string): boolean };
}

/** What one try came to; see {@linkcode _Call.#try}. */
type _TryResult =
  | null
  | ProxyError
  | { outcome: Outcome; up?: UpstreamStream; headers?: H2Headers; endStream?: boolean };

/** Request options of a try whose headers end the request, and of one whose body follows. */
const _ENDS = { endStream: true, waitForTrailers: false } as const;
const _BODY_FOLLOWS = { endStream: false, waitForTrailers: true } as const;

/** Why a try's wait for the response head ended without one. */
type _Waited =
  | { kind: "head"; up: UpstreamStream; headers: H2Headers; endStream: boolean }
  | { kind: "failed"; outcome: Outcome }
  | { kind: "deadline" }
  | { kind: "gone" };

/** The waits that carry nothing but their kind. */
const _GONE: _Waited = { kind: "gone" };
const _DEADLINE: _Waited = { kind: "deadline" };

/**
 * Serves one h2 stream to the end; never throws. `endStream`: its headers ended it (no body).
 */
export function serveCall(
  deps: CallDeps,
  conn: CallConn,
  stream: H2Stream,
  headers: H2Headers,
  endStream = false,
): Promise<void> {
  const grpc = isGrpc(headers["content-type"]);
  let call: _Call | null = null;
  // Not an async function: the usual call's only wait is inside `run`, whose promise is
  // returned as it is instead of being awaited by one more suspended frame.
  try {
    let head;
    try {
      head = requestHeadOf(headers, deps.limits);
    } catch (e) {
      if (e instanceof H2RequestError || e instanceof HttpParseError) {
        answerLocally(stream, deps.node, grpc, new ProxyError(400, "bad_request", e.message));
        return _DONE;
      }
      throw e;
    }
    const decision = deps.router.route(head, conn.listener, conn.client);
    if (decision instanceof ProxyError) {
      // The router's record layer has counted it already.
      answerLocally(stream, deps.node, grpc, decision);
      return _DONE;
    }
    const fwd = forwardedHeaders(head, {
      clientAddr: conn.clientAddr,
      extra: decision.extraRequestHeaders,
      callerLine: conn.callerLine,
      teTrailers: wantsTrailers(headers),
    });
    call = new _Call(deps, conn, stream, decision, fwd, grpc, isIdempotent(head.method), endStream);
    return call.run(grpc ? parseGrpcTimeout(headers["grpc-timeout"]) : null);
  } catch (e) {
    _crashed(deps, stream, grpc, call, e);
    return _DONE;
  }
}

/** A bug, not a client's fault: the stream must still end, and the call be counted once. */
function _crashed(d: CallDeps, s: H2Stream, grpc: boolean, call: _Call | null, e: unknown): void {
  if (!s.headersSent && !s.closed) {
    answerLocally(s, d.node, grpc, new ProxyError(502, "upstream_reset", String(e)));
  } else if (!s.closed) {
    s.close(NGHTTP2_INTERNAL_ERROR);
  }
  call?.finish(502);
}

/** What {@linkcode serveCall} returns for a stream it answered without a try. */
const _DONE: Promise<void> = Promise.resolve();

/** A routed h2 call: its tries, its relay and its one record. */
class _Call {
  readonly #d: CallDeps;
  readonly #c: CallConn;
  readonly #s: H2Stream;
  readonly #decision: RouteDecision;
  readonly #fwd: H2Headers;
  readonly #grpc: boolean;
  readonly #idempotent: boolean;
  readonly #body: BodyTap;
  readonly #started: number;
  #deadlineAt = Infinity;
  #done = false;
  #gone = false;
  #bytesOut = 0;
  /** The request's trailers, once the client sent them. */
  #reqTrailers: H2Headers | null = null;
  /** Ends the wait under way (a sleep or a try's wait for its head) when the client leaves. */
  #onGone: ((w: _Waited) => void) | null = null;
  /** The try whose response trailers arrived, and those trailers (kept from their arrival). */
  #trailersUp: UpstreamStream | null = null;
  #upTrailers: H2Headers | null = null;
  /** The relay: the try relayed, its status and grpc-status, the trailers to end it with. */
  #rUp: UpstreamStream | null = null;
  #rStatus = 0;
  #rGrpcStatus: number | null = null;
  #rTrailers: H2Headers | null = null;
  #rDeadline: CoarseTimer | null = null;

  constructor(
    d: CallDeps,
    c: CallConn,
    s: H2Stream,
    decision: RouteDecision,
    fwd: H2Headers,
    grpc: boolean,
    idempotent: boolean,
    endStream: boolean,
  ) {
    this.#d = d;
    this.#c = c;
    this.#s = s;
    this.#decision = decision;
    this.#fwd = fwd;
    this.#grpc = grpc;
    this.#idempotent = idempotent;
    this.#body = endStream ? NO_BODY : new BodyTap(s, d.maxRetryBodyBytes, false);
    this.#started = d.now();
    // Trailers follow a body: a request whose headers ended it has none.
    if (!endStream) {
      s.once("trailers", (t: H2Headers) => this.#reqTrailers = relayedHeaders(t, false));
    }
    s.once("close", () => {
      this.#gone = true;
      const g = this.#onGone;
      this.#onGone = null;
      g?.(_GONE);
    });
  }

  /** Records the call once: the status the client got (gRPC: by its grpc-status). */
  finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#decision.onDone?.(status, this.#bytesOut, this.#body.bytesIn);
  }

  /** Runs the call's layers from the fault delay to the relay; `grpcTimeoutMs` is its deadline. */
  async run(grpcTimeoutMs: number | null): Promise<void> {
    try {
      const d = this.#decision;
      if (grpcTimeoutMs !== null) this.#deadlineAt = this.#started + grpcTimeoutMs;
      // Mirror copies are HTTP/1.1 requests made from a buffered body: an h2 call makes none,
      // and says so in skein_mirror_requests_total as a copy it could not take.
      d.mirror?.count("dropped_body");
      // 3. fault delay: before the first try is even planned
      if (d.delayMs !== undefined) {
        await this.#sleep(d.delayMs);
        if (this.#gone) return this.finish(0);
      }
      // Made on the first retry: most calls take one try.
      let tried: Set<string> | null = null;
      let last: ProxyError | null = null;
      for (let attempt = 0;; attempt++) {
        // 6. balance: never an endpoint already tried while another is left
        const ep = d.pick(attempt, tried ?? NO_EXCLUSION);
        if (ep === null) return this.#fail(last ?? noEndpointError(d));
        // 7. try
        const r = await this.#try(ep);
        if (r === null) return;
        if (r instanceof ProxyError) return this.#fail(r);
        last = outcomeToProxyError(d.cluster, ep, r.outcome);
        // 8. retry: only a try the one rule lets through, then the destination's policy
        const facts = {
          outcome: r.outcome,
          replayable: this.#body.replayable,
          idempotent: this.#idempotent,
          sentUpstream: true,
          bodyStreaming: !this.#body.ended,
          draining: false,
          overallSpent: this.#d.now() >= this.#headDeadline(),
        };
        const may = this.#body.replayable && !this.#gone && mayRetry(facts);
        const backoff = may ? d.retry(attempt, r.outcome) : null;
        if (backoff === null) {
          if (r.up !== undefined) return this.#relay(r.up, r.headers!, r.endStream!);
          return this.#fail(last);
        }
        (tried ??= new Set()).add(ep.key);
        if (r.up !== undefined) {
          this.#body.detach();
          r.up.close(NGHTTP2_CANCEL);
        }
        this.#d.onRetry?.();
        if (backoff > 0) await this.#sleep(backoff);
        if (this.#gone) return this.finish(0);
      }
    } catch (e) {
      _crashed(this.#d, this.#s, this.#grpc, this, e);
    }
  }

  /** When the wait for a response head must end: the Policy's timeout, the gRPC deadline. */
  #headDeadline(): number {
    const t = this.#decision.timeoutMs;
    return Math.min(t > 0 ? this.#started + t : Infinity, this.#deadlineAt);
  }

  /**
   * One try to `ep`. Null: it was answered (relayed or the client left); a ProxyError: answer
   * it without retrying; else how it failed, with the response to relay when it is not retried.
   * Not an async function: with the session open (the usual call) the only wait is for the
   * response head, whose promise settles with the try's result.
   */
  #try(ep: Endpoint): _TryResult | Promise<_TryResult> {
    const d = this.#decision;
    const t0 = this.#d.now();
    const h1 = this.#c.h1;
    const upstreams = h1 !== undefined && h1.speaksH1(d.cluster) ? h1.upstreams : this.#c.sessions;
    const open = upstreams.ready?.(ep) ?? null;
    if (open !== null) return this.#send(ep, t0, open);
    return upstreams.get(ep).then((session) => this.#send(ep, t0, session), (e) => {
      const outcome: Outcome = { kind: "connect_failure", reason: (e as Error).message };
      d.onResult(ep, outcome, this.#d.now() - t0);
      return { outcome };
    });
  }

  /** Sends the try to `ep` (begun at `t0`) on `session`; settles once its head is in or it failed. */
  #send(ep: Endpoint, t0: number, session: UpstreamSession): _TryResult | Promise<_TryResult> {
    if (this.#gone) return this.finish(0), null;
    const d = this.#decision;
    // Neither session kind keeps or changes the block: it is copied only to add the deadline.
    let h = this.#fwd;
    if (this.#deadlineAt !== Infinity) {
      h = { ...h, "grpc-timeout": formatGrpcTimeout(this.#deadlineAt - this.#d.now()) };
    }
    let up: UpstreamStream;
    // A body may end with trailers (the client's 'trailers' come before its 'end').
    const ends = this.#body.emptyAndEnded;
    try {
      up = session.request(h, ends ? _ENDS : _BODY_FOLLOWS);
    } catch (e) {
      const outcome: Outcome = { kind: "connect_failure", reason: (e as Error).message };
      d.onResult(ep, outcome, this.#d.now() - t0);
      return { outcome };
    }
    // Listened for at once: the event fires once, maybe before the relay starts.
    up.on("trailers", (t: H2Headers) => {
      this.#trailersUp = up;
      this.#upTrailers = t;
    });
    if (!ends) {
      const sent = up;
      sent.once("wantTrailers", () => {
        try {
          sent.sendTrailers(this.#reqTrailers ?? {});
        } catch {
          // The try was abandoned meanwhile.
        }
      });
      this.#body.attach(up);
    }
    const perTry = d.perTryTimeoutMs > 0 ? t0 + d.perTryTimeoutMs : Infinity;
    return this.#awaitHead(up, Math.min(perTry, this.#headDeadline()), perTry, ep, t0);
  }

  /** The try's result once its wait for a head ended with `w`. */
  #headed(ep: Endpoint, t0: number, up: UpstreamStream, w: _Waited): _TryResult {
    const d = this.#decision;
    if (w.kind !== "head") {
      this.#body.detach();
      if (!up.closed) up.close(NGHTTP2_CANCEL);
    }
    switch (w.kind) {
      case "gone":
        this.finish(0);
        return null;
      case "deadline": {
        d.onResult(ep, { kind: "timeout" }, this.#d.now() - t0);
        const overDeadline = this.#d.now() >= this.#deadlineAt;
        return overDeadline
          ? new ProxyError(504, "upstream_timeout", `deadline exceeded waiting for ${d.cluster}`)
          : outcomeToProxyError(d.cluster, ep, { kind: "timeout" });
      }
      case "failed":
        d.onResult(ep, w.outcome, this.#d.now() - t0);
        return { outcome: w.outcome };
      case "head":
        break;
    }
    const status = Number(w.headers[":status"]);
    const gs = this.#grpc ? grpcStatusIn(w.headers) : null;
    // A trailers-only gRPC answer carries its grpc-status in the head: that decides success.
    const counted = gs !== null && status === 200 ? httpStatusOfGrpc(gs) : status;
    d.onResult(ep, { kind: "response", status: counted }, this.#d.now() - t0);
    if (gs === GrpcStatus.UNAVAILABLE && w.endStream) {
      const outcome: Outcome = { kind: "connect_failure", reason: "grpc-status 14 (UNAVAILABLE)" };
      return { outcome, up: w.up, headers: w.headers, endStream: w.endStream };
    }
    if (counted >= 500) {
      return {
        outcome: { kind: "response", status: counted },
        up: w.up,
        headers: w.headers,
        endStream: w.endStream,
      };
    }
    this.#relay(w.up, w.headers, w.endStream);
    return null;
  }

  /**
   * Waits for the try's response head, its failure, the timer at `until`, or the client
   * leaving; settles with the try's result ({@linkcode #headed}), once.
   */
  #awaitHead(
    up: UpstreamStream,
    until: number,
    perTry: number,
    ep: Endpoint,
    t0: number,
  ): Promise<_TryResult> {
    return new Promise<_TryResult>((resolve, reject) => {
      let timer: CoarseTimer | undefined;
      let settled = false;
      const done = (w: _Waited) => {
        if (settled) return;
        settled = true;
        if (this.#onGone === done) this.#onGone = null;
        if (timer !== undefined) _disarm(this.#d.timers, timer);
        up.off("response", onHead);
        up.off("close", onClose);
        // Run here, inside the codec's event: a throw must still reach the call's catch.
        try {
          resolve(this.#headed(ep, t0, up, w));
        } catch (e) {
          reject(e);
        }
      };
      const onHead = (hs: H2Headers, flags: number) =>
        done({ kind: "head", up, headers: hs, endStream: (flags & 1) !== 0 || up.readableEnded });
      const onClose = () => {
        // Refused unread (RST_STREAM REFUSED_STREAM, or past a GOAWAY): reached no app.
        const outcome: Outcome = up.rstCode === NGHTTP2_REFUSED_STREAM
          ? { kind: "connect_failure", reason: "stream refused by the callee" }
          : { kind: "reset" };
        done({ kind: "failed", outcome });
      };
      up.on("response", onHead);
      up.on("close", onClose);
      this.#onGone = done;
      if (until !== Infinity) {
        timer = _timer(() =>
          done(
            this.#d.now() >= perTry && perTry < this.#headDeadline()
              ? { kind: "failed", outcome: { kind: "timeout" } }
              : _DEADLINE,
          )
        );
        this.#d.timers.arm(timer, Math.max(0, until - this.#d.now()));
      }
    });
  }

  /** 9. relay: the response head, its body and its trailers to the client; 10. record. */
  #relay(up: UpstreamStream, headers: H2Headers, endStream: boolean): void {
    const s = this.#s;
    this.#rStatus = Number(headers[":status"]);
    if (this.#gone) {
      up.close(NGHTTP2_CANCEL);
      return this.finish(0);
    }
    this.#rGrpcStatus = this.#grpc ? grpcStatusIn(headers) : null;
    if (endStream) {
      s.respond(relayedHeaders(headers, true), _ENDS);
      return this.#record();
    }
    this.#rUp = up;
    s.respond(relayedHeaders(headers, true), _BODY_FOLLOWS);
    // The relay's state lives in the call's fields and its steps are methods: the listeners
    // below are its only closures.
    s.on("wantTrailers", () => {
      try {
        s.sendTrailers(this.#rTrailers ?? {});
      } catch {
        s.close();
      }
    });
    if (this.#deadlineAt !== Infinity) {
      // The gRPC deadline covers the whole call, streamed responses included.
      const deadline = this.#rDeadline = _timer(() => {
        this.#rGrpcStatus = GrpcStatus.DEADLINE_EXCEEDED;
        this.#rTrailers = grpcTrailers(
          GrpcStatus.DEADLINE_EXCEEDED,
          "deadline exceeded (proxy)",
          "upstream_timeout",
        );
        up.close(NGHTTP2_CANCEL);
        s.end();
      });
      this.#d.timers.arm(deadline, Math.max(0, this.#deadlineAt - this.#d.now()));
    }
    up.on("data", (c: Uint8Array) => {
      this.#bytesOut += c.length;
      if (!s.write(c)) {
        up.pause();
        s.once("drain", () => up.resume());
      }
    });
    // The body's end: its trailers (if any) came before it.
    up.on("end", () => {
      this.#clearDeadline();
      if (s.closed || s.writableEnded) return;
      const t = this.#trailersUp === up ? this.#upTrailers : null;
      if (t !== null) {
        this.#rTrailers = relayedHeaders(t, false);
        if (this.#grpc) this.#rGrpcStatus = grpcStatusIn(t);
      }
      s.end();
    });
    // A reset ends the stream without 'end'; a clean close is followed by 'end' once read.
    up.on("close", () => {
      if (up.rstCode !== NGHTTP2_NO_ERROR) this.#broken();
    });
    if (up.closed && up.rstCode !== NGHTTP2_NO_ERROR) this.#broken();
    s.once("close", () => {
      this.#clearDeadline();
      // Only a response still coming is cancelled: one read to its end closes by itself.
      if (!up.closed && !up.readableEnded) up.close(NGHTTP2_CANCEL);
      this.#record();
    });
  }

  /** Records the relayed call: its status, or for gRPC the one its grpc-status stands for. */
  #record(): void {
    const status = this.#rStatus;
    this.finish(this.#grpc && status === 200 ? httpStatusOfGrpc(this.#rGrpcStatus) : status);
  }

  #clearDeadline(): void {
    if (this.#rDeadline !== null) _disarm(this.#d.timers, this.#rDeadline);
  }

  /** The relayed try broke off mid-response: a gRPC client still gets a status, others a reset. */
  #broken(): void {
    this.#clearDeadline();
    const s = this.#s;
    if (s.closed || s.writableEnded || this.#rUp === null || this.#rUp.readableEnded) return;
    if (this.#grpc) {
      this.#rGrpcStatus = GrpcStatus.UNAVAILABLE;
      this.#rTrailers = grpcTrailers(
        GrpcStatus.UNAVAILABLE,
        "upstream reset mid-response",
        "upstream_reset",
      );
      s.end();
    } else {
      s.close(NGHTTP2_INTERNAL_ERROR);
    }
  }

  /** Answers `e` to the client (nothing was relayed yet) and records it. */
  #fail(e: ProxyError): void {
    if (this.#gone) return this.finish(0);
    const overDeadline = this.#d.now() >= this.#deadlineAt;
    if (overDeadline && this.#grpc) {
      e = new ProxyError(
        504,
        "upstream_timeout",
        `deadline exceeded calling ${this.#decision.cluster}`,
      );
    }
    const code = answerLocally(this.#s, this.#d.node, this.#grpc, e);
    this.finish(this.#grpc ? httpStatusOfGrpc(code) : e.status);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#onGone = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

/** What a disarmed call timer runs: nothing. */
const _NOOP = () => {};

/**
 * Disarms a call's timer for good. A disarmed timer stays in its set until the next check (up
 * to 50 ms), and the set's storage may outlive that: with its callback, the timer would keep
 * the whole call (streams, heads, listeners) reachable, and the collector would promote it.
 */
function _disarm(timers: CoarseTimers, t: CoarseTimer): void {
  timers.disarm(t);
  t.fire = _NOOP;
}

/** A coarse timer that runs `fire` (armed by the caller). */
function _timer(fire: () => void): CoarseTimer {
  return { due: Infinity, queued: false, step: 0, fire };
}
