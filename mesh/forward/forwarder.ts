/**
 * The HTTP/1.1 forwarding engine: an accept loop, a keep-alive loop per client connection, and
 * per request: parse the head, route, rewrite, send over a pooled upstream connection, stream the
 * body both ways, relay the response. Built on `Deno.Conn` directly because fetch()/Deno.serve
 * cost several times more per request (see `docs/hot_path.md`).
 *
 * Retries happen only when safe: nothing was sent to the client yet, the request body is fully
 * buffered (none, or Content-Length up to `maxRetryBodyBytes`), and either the request never
 * reached the upstream (connect failure) or the method is idempotent.
 * Timeouts bound the wait for the response head; bodies then stream for as long as they flow.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import {
  ByteWriter,
  callerLine,
  ChunkedFramer,
  DEFAULT_HEAD_LIMITS,
  findHeadEnd,
  type HeadLimits,
  type HeadScan,
  HttpParseError,
  isIdempotent,
  newHeadScan,
  parseRequestHead,
  parseResponseHead,
  proxyResponseBytes,
  type RequestHead,
  resetHeadScan,
  responseBodyKind,
  type ResponseHead,
  writeForwardedRequestHead,
  writeForwardedResponseHead,
} from "../http1/mod.ts";
import { closeQuietly, noDelay, pipe, writeAll, writeNow } from "../conn/io.ts";
import { readerFor, type ReadFn } from "./direct_read.ts";
import { ConnectError, ConnectionPool, type UpstreamConn } from "./pool.ts";
import { peerIdentityOf } from "./tls_conn.ts";
import { reachedNoApp, refuseUnread } from "./refuse.ts";
import { mirrorRequest } from "./mirror.ts";
import { type OpenUpgrade, OpenUpgrades } from "./open_upgrades.ts";
import { type CoarseTimer, CoarseTimers } from "./coarse_timers.ts";
import { turnNow } from "./batch_clock.ts";
import { DEFAULT_TCP_IDLE_TIMEOUT_MS, IdleSweeper } from "./idle.ts";
import {
  type ClientInfo,
  type Endpoint,
  type ListenerInfo,
  noEndpointError,
  type Outcome,
  outcomeToProxyError,
  ProxyError,
  type RouteDecision,
  type Router,
} from "./types.ts";

/** Most client connections served at once; accepting pauses at the cap. */
export const DEFAULT_MAX_CLIENT_CONNECTIONS = 10_000;
/** Read buffer per client connection, in bytes (grows only for large heads). */
export const DEFAULT_CLIENT_BUFFER_BYTES = 16 * 1024;
/** How long a keep-alive client connection may sit idle between requests, in ms. */
export const DEFAULT_KEEP_ALIVE_IDLE_MS = 60_000;
/** How long a client may take to send a complete request head, in ms. */
export const DEFAULT_HEADER_TIMEOUT_MS = 30_000;
/** Largest request body buffered so the request can be retried, in bytes. */
export const DEFAULT_MAX_RETRY_BODY_BYTES = 64 * 1024;
/** Most attempts per request, whatever the router says. */
export const MAX_ATTEMPTS = 8;
/** Response bytes coalesced with the head into one write, in bytes. */
const COALESCE_BYTES = 16 * 1024;
/** Granularity of the idle/header timeout sweep, in ms. */
const SWEEP_INTERVAL_MS = 1_000;

/** Options for {@linkcode HttpForwarder}. */
export interface ForwarderOptions {
  /** This proxy's node name, sent as `x-skein-proxy` on responses it generates. */
  node: string;
  /** Describes the listener to the router. */
  listener: ListenerInfo;
  /** Decides where each request goes. */
  router: Router;
  /** Where events go. */
  logger: Logger;
  /** Upstream connection pool; shared between listeners if given. @default a new pool */
  pool?: ConnectionPool;
  /** @default DEFAULT_MAX_CLIENT_CONNECTIONS */
  maxClientConnections?: number;
  /** @default DEFAULT_CLIENT_BUFFER_BYTES */
  clientBufferBytes?: number;
  /** @default DEFAULT_KEEP_ALIVE_IDLE_MS */
  keepAliveIdleMs?: number;
  /** @default DEFAULT_HEADER_TIMEOUT_MS */
  headerTimeoutMs?: number;
  /** @default DEFAULT_MAX_RETRY_BODY_BYTES */
  maxRetryBodyBytes?: number;
  /** Head limits for requests and responses. @default DEFAULT_HEAD_LIMITS */
  limits?: HeadLimits;
  /** Append the client address to `x-forwarded-for`. @default true */
  forwardedFor?: boolean;
  /**
   * The callee's inbound: drop the identity fields a caller could forge and tell the app who
   * called in `x-skein-caller` (the verified peer identity). @default false
   */
  callerHeader?: boolean;
  /**
   * An upgraded connection (WebSocket, a TCP tunnel's callee end) with no byte either way for
   * this long is closed, in ms; 0 = never. @default DEFAULT_TCP_IDLE_TIMEOUT_MS
   */
  upgradedIdleMs?: number;
  /** Clock of the upgraded idle timeout, in ms (tests). @default performance.now */
  idleClock?: () => number;
}

/** Counters for tests and metrics. */
export interface ForwarderStats {
  /** Client connections accepted. */
  accepted: number;
  /** Client connections open now. */
  active: number;
  /** Requests whose head was parsed. */
  requests: number;
  /** Responses the proxy generated itself, by status. */
  local: Record<number, number>;
  /** Retries performed. */
  retries: number;
  /** Mesh calls turned down unread because they reached no application (see refuse.ts). */
  refused: number;
  /** Request body bytes relayed upstream. */
  requestBodyBytes: number;
  /** Response body bytes relayed to clients. */
  responseBodyBytes: number;
}

/** State shared by a forwarder and its sessions. */
interface _Ctx {
  readonly opts: Required<Omit<ForwarderOptions, "pool">>;
  readonly node: string;
  readonly upstreams: ConnectionPool;
  readonly stats: ForwarderStats;
  /** Set once drain starts. */
  draining: boolean;
  /** Advances once per sweep; deadlines are counted in ticks. */
  tick: number;
  /** Per-attempt budgets (one shared interval instead of a timer per attempt). */
  readonly timers: CoarseTimers;
  /** Idle timeouts of upgraded connections. */
  readonly upgraded: IdleSweeper;
  /** Open upgraded connections whose caller is checked again when policies change. */
  readonly rechecked: OpenUpgrades;
}

/** Result of trying to serve one request. */
const enum Done {
  /** The response was relayed and the client connection may serve another request. */
  KeepAlive,
  /** The client connection must be closed. */
  Close,
}

/** An HTTP/1.1 reverse-proxy listener. */
export class HttpForwarder {
  readonly #listener: Deno.Listener;
  readonly #opts: Required<Omit<ForwarderOptions, "pool">>;
  readonly #pool: ConnectionPool;
  readonly #ownPool: boolean;
  readonly #ctx: _Ctx;
  readonly #sessions = new Set<_Session>();
  readonly #served: Promise<void>;
  #slotFreed: (() => void) | null = null;
  readonly #sweeper: ReturnType<typeof setInterval>;

  /** Starts forwarding connections accepted on `listener`. */
  constructor(listener: Deno.Listener, opts: ForwarderOptions) {
    this.#listener = listener;
    this.#opts = {
      maxClientConnections: DEFAULT_MAX_CLIENT_CONNECTIONS,
      clientBufferBytes: DEFAULT_CLIENT_BUFFER_BYTES,
      keepAliveIdleMs: DEFAULT_KEEP_ALIVE_IDLE_MS,
      headerTimeoutMs: DEFAULT_HEADER_TIMEOUT_MS,
      maxRetryBodyBytes: DEFAULT_MAX_RETRY_BODY_BYTES,
      limits: DEFAULT_HEAD_LIMITS,
      forwardedFor: true,
      callerHeader: false,
      upgradedIdleMs: DEFAULT_TCP_IDLE_TIMEOUT_MS,
      idleClock: () => performance.now(),
      ...opts,
    };
    this.#ownPool = opts.pool === undefined;
    this.#pool = opts.pool ?? new ConnectionPool({ now: turnNow });
    this.#ctx = {
      opts: this.#opts,
      node: opts.node,
      upstreams: this.#pool,
      draining: false,
      tick: 0,
      timers: new CoarseTimers(turnNow),
      upgraded: new IdleSweeper({ idleMs: this.#opts.upgradedIdleMs, now: this.#opts.idleClock }),
      rechecked: new OpenUpgrades(opts.logger),
      stats: {
        accepted: 0,
        active: 0,
        requests: 0,
        local: {},
        retries: 0,
        refused: 0,
        requestBodyBytes: 0,
        responseBodyBytes: 0,
      },
    };
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    Deno.unrefTimer(this.#sweeper);
    this.#served = this.#acceptLoop();
  }

  /** Listens on `hostname:port` (port 0 picks one) and starts forwarding. */
  static listen(hostname: string, port: number, opts: ForwarderOptions): HttpForwarder {
    return new HttpForwarder(Deno.listen({ hostname, port }), opts);
  }

  /** The local address actually bound. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /**
   * New limits for what comes next (a configuration reload): new connections, the next request
   * head, the next idle or header wait. Connections and requests already open are kept.
   */
  setLimits(
    l: Partial<
      Pick<
        ForwarderOptions,
        "limits" | "maxClientConnections" | "keepAliveIdleMs" | "headerTimeoutMs"
      >
    >,
  ): void {
    // The sessions read these options when they need them, so a change reaches them there.
    Object.assign(
      this.#opts,
      Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined)),
    );
    // An accept loop waiting for a slot under the old cap looks again.
    const wake = this.#slotFreed;
    this.#slotFreed = null;
    wake?.();
  }

  /** The upstream pool in use. */
  get pool(): ConnectionPool {
    return this.#pool;
  }

  /** A snapshot of the counters. */
  stats(): ForwarderStats {
    const st = this.#ctx.stats;
    return { ...st, active: this.#sessions.size, local: { ...st.local } };
  }

  async #acceptLoop(): Promise<void> {
    while (true) {
      if (this.#sessions.size >= this.#opts.maxClientConnections) {
        // Backpressure instead of refusing: the kernel backlog holds new clients meanwhile.
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        continue;
      }
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#ctx.draining) return;
        if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
        this.#opts.logger.warn("accept failed", {
          listener: this.#opts.listener.name,
          err: e as Error,
        });
        continue;
      }
      if (this.#ctx.draining) {
        closeQuietly(conn);
        return;
      }
      noDelay(conn);
      this.#ctx.stats.accepted++;
      const s = new _Session(this.#ctx, conn);
      this.#sessions.add(s);
      s.run().finally(() => {
        this.#sessions.delete(s);
        const wake = this.#slotFreed;
        this.#slotFreed = null;
        wake?.();
      });
    }
  }

  #sweep(): void {
    const tick = ++this.#ctx.tick;
    for (const s of this.#sessions) s.checkDeadline(tick);
  }

  /**
   * Stops accepting, closes idle keep-alive connections, lets in-flight requests finish, and
   * after `deadlineMs` closes whatever is left. Resolves when every connection is closed.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.#ctx.draining = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const s of this.#sessions) s.closeIfIdle();
    const started = Date.now();
    while (this.#sessions.size > 0 && Date.now() - started < deadlineMs) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const s of this.#sessions) s.abort();
    while (this.#sessions.size > 0) await new Promise((r) => setTimeout(r, 1));
    await this.#served;
    clearInterval(this.#sweeper);
    this.#ctx.timers.close();
    this.#ctx.upgraded.close();
    this.#ctx.rechecked.clear();
    if (this.#ownPool) this.#pool.close();
  }

  /** Closes everything now. */
  async close(): Promise<void> {
    await this.drain(0);
  }

  /**
   * Asks again whether each open upgraded connection (tunnel, WebSocket) is allowed, after the
   * policies changed, and closes both ends of those that are not. Returns how many it closed.
   */
  recheckUpgraded(): number {
    return this.#ctx.rechecked.recheck();
  }

  /** Ends the upgraded connections idle past the timeout now (tests; a timer does it otherwise). */
  sweepIdleUpgrades(): void {
    this.#ctx.upgraded.sweep();
  }
}

/** One client connection and its keep-alive loop. */
class _Session implements CoarseTimer {
  readonly #f: _Ctx;
  readonly #conn: Deno.Conn;
  /** Reads from the client (0 or null at end of stream). */
  readonly #read: ReadFn;
  readonly #clientAddr: string | null;
  readonly #client: ClientInfo;
  /** `x-skein-caller: <id>\r\n` on the inbound (null: no verified caller), else undefined. */
  readonly #callerLine: string | null | undefined;
  #buf: Uint8Array;
  #pos = 0;
  #len = 0;
  readonly #scan: HeadScan = newHeadScan(0);
  readonly #out = new ByteWriter(4096, 1 << 20);
  #waitingHead = false;
  /**
   * Buffering a request body before the first attempt: the request already holds its circuit
   * breaker slot, and no try timer runs yet, so the header-read timeout bounds this wait too.
   */
  #waitingBody = false;
  /** The client's side ended while its body was being pumped (not the upstream's fault). */
  #clientGone = false;
  #deadlineTick = Infinity;
  #closed = false;
  #framer: ChunkedFramer | null = null;
  /** The per-try timer (this session is its own {@linkcode CoarseTimer}): when it fires. */
  due = Infinity;
  /** Whether the per-try timer sits in the forwarder's timer set. */
  queued = false;
  /** The check period the per-try timer asks for. */
  step = 0;
  /** The upstream connection of the attempt the per-try timer guards. */
  #tryConn: UpstreamConn | null = null;
  /** Whether the per-try timer fired during the current attempt. */
  #timedOut = false;

  constructor(f: _Ctx, conn: Deno.Conn) {
    this.#f = f;
    this.#conn = conn;
    this.#read = readerFor(conn);
    this.#buf = new Uint8Array(f.opts.clientBufferBytes);
    const ra = conn.remoteAddr as Deno.NetAddr;
    this.#clientAddr = f.opts.forwardedFor && ra.hostname !== undefined ? ra.hostname : null;
    this.#client = {
      address: ra.hostname ?? null,
      port: ra.port ?? 0,
      identity: peerIdentityOf(conn),
    };
    this.#callerLine = f.opts.callerHeader ? callerLine(this.#client.identity) : undefined;
  }

  /** The per-try budget ran out: give up on the attempt's upstream connection. */
  fire(): void {
    this.#timedOut = true;
    if (this.#tryConn !== null) this.#f.upstreams.discard(this.#tryConn);
  }

  checkDeadline(tick: number): void {
    if ((this.#waitingHead || this.#waitingBody) && tick >= this.#deadlineTick) this.abort();
  }

  closeIfIdle(): void {
    if (this.#waitingHead && this.#len === this.#pos) this.abort();
  }

  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#conn);
    this.#endDelay?.();
  }

  /** Ends the fault delay in progress early (the session was aborted). */
  #endDelay: (() => void) | null = null;

  /** Waits `ms` for an injected fault delay, or less if the session is aborted meanwhile. */
  async #faultDelay(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#endDelay = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.#endDelay = null;
  }

  /**
   * Serves requests until the connection ends. The usual request (no body) costs one async
   * layer above its I/O: the head is read here and its first attempt awaited here, not
   * through helpers (each async layer costs a promise and a microtask hop per request).
   */
  async run(): Promise<void> {
    try {
      while (!this.#closed) {
        // ---- read one head ----
        this.#beginHead();
        let end = -1;
        try {
          while (true) {
            if (this.#len > 0) {
              end = findHeadEnd(this.#buf, this.#len, this.#scan, this.#f.opts.limits.maxHeadBytes);
              if (end >= 0) break;
            }
            if (this.#len === this.#buf.length) {
              this.#grow(this.#f.opts.limits.maxHeadBytes + 1024);
            }
            if (this.#f.draining && this.#len === 0) break;
            const n = await this.#read(this.#buf.subarray(this.#len));
            if (!n) break;
            if (this.#len === 0) this.#deadlineTick = this.#f.tick + this.#headTicks();
            this.#len += n;
          }
        } catch (e) {
          if (!(e instanceof HttpParseError)) throw e;
          this.#waitingHead = false;
          await this.#answer(e.status, "bad_request", e.message, true, false);
          break;
        } finally {
          this.#waitingHead = false;
        }
        if (end < 0) break;
        let head: RequestHead;
        try {
          head = parseRequestHead(this.#buf, this.#scan.start, end, this.#f.opts.limits);
        } catch (e) {
          if (e instanceof HttpParseError) {
            await this.#answer(e.status, "bad_request", e.message, true, false);
            break;
          }
          throw e;
        }
        this.#f.stats.requests++;
        this.#pos = end;
        // Per exchange: a kept-alive connection (a reused mux stream too) must not carry the
        // last exchange's status into this one, or a refusal becomes an answer.
        this.#sentStatus = this.#bodyOut = 0;

        // ---- route and exchange ----
        const f = this.#f;
        const decision = f.opts.router.route(head, f.opts.listener, this.#client);
        // A fault a Route injects: the request waits before its first try is even planned.
        if (!(decision instanceof ProxyError) && decision.delayMs !== undefined) {
          await this.#faultDelay(decision.delayMs);
          if (this.#closed) {
            // Aborted (a drain's deadline, a client gone) while waiting: nothing was sent.
            decision.onDone?.(0, 0);
            break;
          }
        }
        let done: Done;
        if (decision instanceof ProxyError) {
          done = await this.#answerError(decision, head, head.chunked || head.contentLength > 0);
        } else if (head.chunked || head.contentLength > 0) {
          done = await this.#exchange(head, decision);
        } else {
          // No body: replayable as is. The first attempt runs from here; retries, if any, in
          // #attempts. onDone must run exactly once whatever happens (a client reset included).
          if (decision.mirror !== undefined) {
            mirrorRequest(f.upstreams, decision.mirror, head, _NO_BODY);
          }
          try {
            const started = turnNow();
            const idempotent = isIdempotent(head.method);
            const ep = decision.pick(0, _EMPTY);
            if (ep === null) {
              // As #attempts would answer, without asking the balancer a second time.
              done = await this.#answerError(_noEndpoint(decision), head, false);
            } else {
              const r = await this.#attempt(
                head,
                decision,
                ep,
                0,
                started,
                true,
                idempotent,
                false,
              );
              done = r.done !== undefined
                ? r.done
                : await this.#attempts(head, decision, true, idempotent, started, { ep, r });
            }
          } finally {
            decision.onDone?.(this.#sentStatus, this.#bodyOut);
          }
        }
        if (done === Done.Close || this.#f.draining) break;
      }
    } catch (e) {
      if (!this.#closed) {
        this.#f.opts.logger.debug("client connection ended", { err: e as Error });
      }
    } finally {
      this.abort();
    }
  }

  /** Header-read timeout in sweep ticks. */
  #headTicks(): number {
    return Math.ceil(this.#f.opts.headerTimeoutMs / SWEEP_INTERVAL_MS) + 1;
  }

  /** Compacts the buffer for the next head and arms the idle or header-read deadline. */
  #beginHead(): void {
    if (this.#pos === this.#len) {
      this.#pos = this.#len = 0;
    } else if (this.#pos > 0) {
      this.#buf.copyWithin(0, this.#pos, this.#len);
      this.#len -= this.#pos;
      this.#pos = 0;
    }
    resetHeadScan(this.#scan, 0);
    const idleTicks = Math.ceil(this.#f.opts.keepAliveIdleMs / SWEEP_INTERVAL_MS) + 1;
    this.#waitingHead = true;
    this.#deadlineTick = this.#f.tick + (this.#len === 0 ? idleTicks : this.#headTicks());
  }

  #grow(max: number): void {
    const size = Math.min(max, this.#buf.length * 2);
    if (size <= this.#buf.length) return;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** Sends a response generated by the proxy. */
  async #answer(
    status: number,
    code: string,
    message: string,
    close: boolean,
    headOnly: boolean,
    headers?: string,
  ): Promise<void> {
    const st = this.#f.stats.local;
    st[status] = (st[status] ?? 0) + 1;
    this.#sentStatus = status;
    const bytes = proxyResponseBytes({
      status,
      node: this.#f.node,
      cause: code,
      message,
      close,
      headOnly,
      headers,
    });
    try {
      await writeAll(this.#conn, bytes);
    } catch {
      // The client left; nothing to tell it.
    }
  }

  async #answerError(e: ProxyError, head: RequestHead, bodyPending: boolean): Promise<Done> {
    if (this.#sentStatus === 0 && reachedNoApp(e.code) && refuseUnread(this.#conn)) {
      // A calling proxy retries a refused stream on another endpoint, whatever the method.
      const st = this.#f.stats.local;
      st[e.status] = (st[e.status] ?? 0) + 1;
      this.#f.stats.refused++;
      this.#sentStatus = e.status;
      this.#closed = true;
      return Done.Close;
    }
    const close = bodyPending || !head.keepAlive || head.versionMinor === 0 || this.#f.draining;
    await this.#answer(e.status, e.code, e.message, close, head.method === "HEAD", e.headers);
    return close ? Done.Close : Done.KeepAlive;
  }

  /** Status of the last response head written to the client in this exchange; 0 = none yet. */
  #sentStatus = 0;
  /** Response body bytes relayed to the client in this exchange (for the access log). */
  #bodyOut = 0;

  /**
   * Serves one routed request with a body: buffers a small fixed-length body so the request
   * can be replayed on another endpoint, then runs the attempts. (Bodiless requests take the
   * shorter path in `run`.)
   */
  async #exchange(head: RequestHead, decision: RouteDecision): Promise<Done> {
    // onDone must run exactly once whatever happens below, including a client reset mid-body.
    try {
      const f = this.#f;
      const cl = head.contentLength;
      let replayable = !head.chunked && cl <= 0;
      if (!head.chunked && cl > 0 && cl <= f.opts.maxRetryBodyBytes && !head.expectContinue) {
        if (this.#pos + cl > this.#buf.length) this.#ensureRoom(cl);
        if (this.#len - this.#pos < cl) {
          this.#waitingBody = true;
          this.#deadlineTick = f.tick + this.#headTicks();
          try {
            while (this.#len - this.#pos < cl) {
              const n = await this.#read(this.#buf.subarray(this.#len));
              if (!n) return Done.Close;
              this.#len += n;
            }
          } finally {
            this.#waitingBody = false;
          }
        }
        replayable = true;
      }
      if (decision.mirror !== undefined) {
        const body = replayable ? this.#buf.subarray(this.#pos, this.#pos + cl) : null;
        mirrorRequest(f.upstreams, decision.mirror, head, body);
      }
      return await this.#attempts(
        head,
        decision,
        replayable,
        isIdempotent(head.method),
        turnNow(),
        null,
      );
    } finally {
      decision.onDone?.(this.#sentStatus, this.#bodyOut);
    }
  }

  /**
   * Runs attempts until the client has its answer, starting with the outcome of a first
   * attempt already made (`first`) when given. A buffered body is consumed from the client
   * buffer once the exchange is over.
   */
  async #attempts(
    head: RequestHead,
    decision: RouteDecision,
    replayable: boolean,
    idempotent: boolean,
    started: number,
    first: { ep: Endpoint; r: _AttemptResult } | null,
  ): Promise<Done> {
    const f = this.#f;
    const cl = head.contentLength;
    let exclude: Set<string> | null = null;
    let lastOutcome: Outcome | null = null;
    let lastEp: Endpoint | null = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      let ep: Endpoint | null;
      let r: _AttemptResult;
      if (attempt === 0 && first !== null) {
        ep = first.ep;
        r = first.r;
      } else {
        ep = decision.pick(attempt, exclude ?? _EMPTY);
        if (ep === null) break;
        r = await this.#attempt(
          head,
          decision,
          ep,
          attempt,
          started,
          replayable,
          idempotent,
          false,
        );
      }
      if (r.done !== undefined) {
        if (replayable && cl > 0) this.#pos += cl;
        return r.done;
      }
      lastOutcome = r.outcome;
      lastEp = ep;
      if (r.bodyError !== null) {
        return await this.#answerError(
          new ProxyError(r.bodyError.status, "bad_request", r.bodyError.message),
          head,
          true,
        );
      }
      // A refused connect consumed nothing from the client, so any request may go elsewhere.
      const safe = r.outcome.kind === "connect_failure" ||
        (replayable && (idempotent || !r.sentUpstream));
      const overall = decision.timeoutMs > 0 && turnNow() - started >= decision.timeoutMs;
      const backoff = r.backoff !== undefined
        ? r.backoff
        : safe && !overall && !f.draining
        ? decision.retry(attempt, r.outcome)
        : null;
      if (backoff === null) break;
      f.stats.retries++;
      (exclude ??= new Set()).add(ep.key);
      if (backoff > 0) await new Promise((r) => setTimeout(r, backoff));
    }
    if (replayable && cl > 0) this.#pos += cl;
    const err = lastOutcome === null
      ? _noEndpoint(decision)
      : outcomeToProxyError(decision.cluster, lastEp, lastOutcome);
    return await this.#answerError(err, head, !replayable);
  }

  /**
   * Moves the bytes from `#pos` into a new buffer with room for `n`. The old buffer is left as
   * it is, because the parsed head still points into it (its fields are read from those bytes):
   * compacting in place used to overwrite the head of a request whose body did not fit.
   */
  #ensureRoom(n: number): void {
    const next = new Uint8Array(Math.max(n, this.#buf.length));
    next.set(this.#buf.subarray(this.#pos, this.#len));
    this.#len -= this.#pos;
    this.#pos = 0;
    this.#buf = next;
  }

  /**
   * One attempt against `ep`. Returns `done` once the client got a response (or is gone), else the
   * failed outcome, whether the request may have reached the upstream, and (for a 5xx the policy
   * already chose to retry) the backoff. A replayable body stays in the buffer until `done`.
   */
  async #attempt(
    head: RequestHead,
    decision: RouteDecision,
    ep: Endpoint,
    attempt: number,
    started: number,
    replayable: boolean,
    idempotent: boolean,
    fresh: boolean,
  ): Promise<_AttemptResult> {
    const f = this.#f;
    // The first try starts when the exchange did: one clock read less per request.
    const t0 = attempt === 0 && !fresh ? started : turnNow();
    let uc: UpstreamConn | null = fresh ? null : f.upstreams.takeIdle(ep);
    if (uc === null) {
      try {
        uc = await f.upstreams.acquire(ep, true);
      } catch (e) {
        if (!(e instanceof ConnectError)) throw e;
        const o: Outcome = { kind: "connect_failure", reason: e.reason };
        decision.onResult(ep, o, turnNow() - t0);
        return { outcome: o, sentUpstream: false, bodyError: null };
      }
    }

    // Bound the wait for the response head by the per-try and the remaining overall budget,
    // counted from when the connection is in hand: a slow connect (a new mux session's TLS
    // handshake) must not eat the per-try time. A pooled connection needs no new clock read.
    const from = uc.reused ? t0 : turnNow();
    let budget = decision.perTryTimeoutMs;
    if (decision.timeoutMs > 0) {
      const left = Math.max(1, decision.timeoutMs - (from - started));
      budget = budget > 0 ? Math.min(budget, left) : left;
    }
    this.#timedOut = false;
    if (budget > 0) {
      this.#tryConn = uc;
      f.timers.arm(this, budget, from);
    }

    const cl = head.contentLength;
    const w = this.#out;
    w.reset();
    writeForwardedRequestHead(
      w,
      head,
      this.#clientAddr,
      decision.extraRequestHeaders,
      this.#callerLine,
    );
    // Body bytes already buffered go out with the head in one write.
    let bodyLeft = head.chunked ? 0 : Math.max(0, cl);
    let framer: ChunkedFramer | null = null;
    if (head.chunked) {
      framer = this.#framer ??= new ChunkedFramer();
      framer.reset();
      let end: number;
      try {
        end = framer.feed(this.#buf, this.#pos, this.#len);
      } catch (e) {
        f.timers.disarm(this);
        f.upstreams.discard(uc);
        if (!(e instanceof HttpParseError)) throw e;
        return { outcome: { kind: "reset" }, sentUpstream: false, bodyError: e };
      }
      w.bytes(this.#buf, this.#pos, end);
      this.#pos = end;
    } else if (bodyLeft > 0) {
      const take = Math.min(bodyLeft, this.#len - this.#pos);
      w.bytes(this.#buf, this.#pos, this.#pos + take);
      bodyLeft -= take;
      if (!replayable) this.#pos += take;
    }
    let sentUpstream = false;
    let responseStarted = false;
    try {
      // A mux stream takes the head at once; otherwise awaiting the write itself, not writeAll,
      // saves a promise when it takes everything.
      const head = w.view();
      if (!writeNow(uc.conn, head)) {
        const n = await uc.conn.write(head);
        if (n < head.length) await writeAll(uc.conn, head.subarray(n));
      }
    } catch (e) {
      f.timers.disarm(this);
      f.upstreams.discard(uc);
      // A refused stream took nothing; but only a replayable body can be sent again whole.
      const o: Outcome = this.#timedOut
        ? { kind: "timeout" }
        : replayable && _refusedUnread(e)
        ? { kind: "connect_failure", reason: "refused by the callee" }
        : { kind: "reset" };
      decision.onResult(ep, o, turnNow() - t0);
      return { outcome: o, sentUpstream, bodyError: null };
    }
    sentUpstream = true;

    // Stream the rest of the body concurrently with reading the response: the upstream may
    // answer early, and `Expect: 100-continue` needs the interim response relayed first.
    let pump: Promise<boolean> | null = null;
    let pumpDone = true;
    this.#bodyError = null;
    this.#clientGone = false;
    if ((framer !== null && !framer.done) || bodyLeft > 0) {
      pumpDone = false;
      pump = this.#pumpBody(uc, framer, bodyLeft).then((ok) => {
        pumpDone = true;
        if (!ok) f.upstreams.discard(uc);
        return ok;
      });
    }

    // Read the response head, relaying interim 1xx responses.
    let res: ResponseHead;
    let filled = 0;
    let start = 0;
    const scan = newHeadScan(0);
    try {
      while (true) {
        const end = filled > start
          ? findHeadEnd(uc.buf, filled, scan, f.opts.limits.maxHeadBytes)
          : -1;
        if (end < 0) {
          if (filled === uc.buf.length) {
            if (start === 0) {
              // A head larger than the buffer: grow up to the head limit (findHeadEnd enforces it).
              const next = new Uint8Array(
                Math.min(uc.buf.length * 2, f.opts.limits.maxHeadBytes + 1024),
              );
              if (next.length <= uc.buf.length) {
                throw new HttpParseError("head_too_large", 502, "response head too large");
              }
              next.set(uc.buf);
              uc.buf = next;
              continue;
            }
            uc.buf.copyWithin(0, start, filled);
            filled -= start;
            scan.start -= start;
            scan.lineStart -= start;
            scan.pos -= start;
            start = 0;
          }
          let n: number | null;
          if (uc.pending !== null) {
            // The read started while idle landed at offset 0 of the empty buffer: where we are.
            const p = uc.pending;
            uc.pending = null;
            n = await p;
          } else {
            n = await uc.read(uc.buf.subarray(filled));
          }
          if (!n) throw new Deno.errors.UnexpectedEof("upstream closed before responding");
          filled += n;
          responseStarted = true;
          continue;
        }
        const r = parseResponseHead(uc.buf, scan.start, end, f.opts.limits);
        start = end;
        if (r.status === 101 && !head.upgrade) {
          // The upstream now speaks something else on a connection we would pool: drop it.
          throw new HttpParseError(
            "unsolicited_upgrade",
            502,
            "101 Switching Protocols to a request that asked for no upgrade",
          );
        }
        if (r.status >= 200 || r.status === 101) {
          res = r;
          break;
        }
        // Interim response (100 Continue, 103 Early Hints): pass it on and keep reading.
        w.reset();
        writeForwardedResponseHead(w, r, false);
        await writeAll(this.#conn, w.view());
        resetHeadScan(scan, start);
      }
    } catch (e) {
      f.timers.disarm(this);
      f.upstreams.discard(uc);
      if (pump !== null) await pump;
      if (this.#bodyError !== null) {
        return { outcome: { kind: "reset" }, sentUpstream, bodyError: this.#bodyError };
      }
      if (this.#clientGone) {
        // The client left mid-body: no verdict on the endpoint (outlier detection would eject a
        // healthy one for callers that merely hung up).
        return { outcome: { kind: "reset" }, sentUpstream, bodyError: null };
      }
      if (e instanceof HttpParseError) {
        const o: Outcome = { kind: "response", status: 502 };
        decision.onResult(ep, o, turnNow() - t0);
        if (replayable && cl > 0) this.#pos += cl;
        await this.#answer(
          502,
          "bad_upstream_response",
          `bad response from ${ep.key}: ${e.message}`,
          true,
          false,
        );
        return { done: Done.Close };
      }
      if (!responseStarted && !this.#timedOut && replayable && _refusedUnread(e)) {
        // A mux stream the callee turned down unread (it is draining): like a refused
        // connect, so retry policy may send it anywhere else, whatever the method.
        const o: Outcome = { kind: "connect_failure", reason: "refused by the callee" };
        decision.onResult(ep, o, turnNow() - t0);
        return { outcome: o, sentUpstream: false, bodyError: null };
      }
      if (uc.reused && !responseStarted && !this.#timedOut && replayable && !fresh) {
        // A pooled connection the upstream closed just as we reused it: not the endpoint's
        // fault, so try once more on a fresh connection before involving retry policy.
        return await this.#attempt(
          head,
          decision,
          ep,
          attempt,
          started,
          replayable,
          idempotent,
          true,
        );
      }
      const o: Outcome = this.#timedOut ? { kind: "timeout" } : { kind: "reset" };
      decision.onResult(ep, o, turnNow() - t0);
      return { outcome: o, sentUpstream, bodyError: null };
    }
    f.timers.disarm(this);
    const outcome: Outcome = { kind: "response", status: res.status };
    decision.onResult(ep, outcome, turnNow() - t0);

    if (res.status >= 500 && pump === null && replayable && idempotent && !f.draining) {
      // Policy may retry a 5xx as long as nothing reached the client.
      const backoff = decision.retry(attempt, outcome);
      if (backoff !== null) {
        f.upstreams.discard(uc);
        return { outcome, sentUpstream, bodyError: null, backoff };
      }
    }

    // Relay the response.
    if (res.status === 101 && head.upgrade) {
      if (replayable && cl > 0) this.#pos += cl;
      return { done: await this.#splice(uc, res, start, filled, decision.stillAllowed) };
    }
    const kind = responseBodyKind(head.method, res);
    const close = !head.keepAlive || head.versionMinor === 0 || f.draining || kind === "close";
    let reusable = res.keepAlive && kind !== "close" && !head.upgrade;
    w.reset();
    writeForwardedResponseHead(w, res, close);
    // Set before the write: if the write fails midway the client may still have seen the head.
    this.#sentStatus = res.status;
    let ok = true;
    try {
      if (kind === "none") {
        if (filled > start) reusable = false;
        const out = w.view();
        if (!writeNow(this.#conn, out)) await writeAll(this.#conn, out);
      } else if (kind === "length") {
        let left = res.contentLength;
        const first = Math.min(left, filled - start, COALESCE_BYTES);
        w.bytes(uc.buf, start, start + first);
        left -= first;
        start += first;
        const out = w.view();
        if (!writeNow(this.#conn, out)) {
          const n = await this.#conn.write(out);
          if (n < out.length) await writeAll(this.#conn, out.subarray(n));
        }
        f.stats.responseBodyBytes += first;
        this.#bodyOut += first;
        if (left > 0) {
          ok = await this.#relayLength(uc, start, filled, left);
          if (this.#leftover > 0) reusable = false;
        } else if (filled > start) {
          reusable = false; // bytes beyond the body: the connection is out of step
        }
      } else if (kind === "chunked") {
        const fr = new ChunkedFramer();
        const end = fr.feed(uc.buf, start, filled);
        const first = Math.min(end - start, COALESCE_BYTES);
        w.bytes(uc.buf, start, start + first);
        await writeAll(this.#conn, w.view());
        f.stats.responseBodyBytes += first;
        this.#bodyOut += first;
        ok = await this.#relayChunked(uc, fr, start + first, end, filled);
        if (this.#leftover > 0) reusable = false;
      } else {
        await writeAll(this.#conn, w.view());
        if (filled > start) await writeAll(this.#conn, uc.buf.subarray(start, filled));
        const r = await pipe(uc.conn, this.#conn, uc.buf, (n) => {
          f.stats.responseBodyBytes += n;
          this.#bodyOut += n;
        });
        ok = !r.failed;
        reusable = false;
      }
    } catch {
      ok = false;
    }
    if (pump !== null && !pumpDone) {
      // The upstream answered before the request body was fully sent: neither side can be reused.
      f.upstreams.discard(uc);
      this.abort();
      await pump;
      return { done: Done.Close };
    }
    // A body the pump could not finish leaves the client's connection mid-message: both go.
    const pumped = pump === null || await pump;
    if (!pumped) reusable = false;
    if (ok && reusable) f.upstreams.release(uc);
    else f.upstreams.discard(uc);
    return { done: ok && pumped && !close ? Done.KeepAlive : Done.Close };
  }

  /** Bytes the upstream sent beyond the end of the last relayed body. */
  #leftover = 0;
  /** Why the request body pump failed, when the client's framing was at fault. */
  #bodyError: HttpParseError | null = null;

  /** Relays `left` more body bytes after `buf[start, filled)`; false on failure. */
  async #relayLength(
    uc: UpstreamConn,
    start: number,
    filled: number,
    left: number,
  ): Promise<boolean> {
    this.#leftover = 0;
    try {
      if (filled > start && left > 0) {
        const take = Math.min(left, filled - start);
        await writeAll(this.#conn, uc.buf.subarray(start, start + take));
        left -= take;
        this.#f.stats.responseBodyBytes += take;
        this.#bodyOut += take;
        start += take;
      }
      this.#leftover = filled - start;
      while (left > 0) {
        const n = await uc.read(uc.buf);
        if (!n) return false;
        const take = Math.min(left, n);
        await writeAll(this.#conn, uc.buf.subarray(0, take));
        this.#f.stats.responseBodyBytes += take;
        this.#bodyOut += take;
        left -= take;
        this.#leftover = n - take;
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Relays a chunked body: `buf[from, end)` is framed but unsent; reads more until done. */
  async #relayChunked(
    uc: UpstreamConn,
    fr: ChunkedFramer,
    from: number,
    end: number,
    filled: number,
  ): Promise<boolean> {
    this.#leftover = 0;
    try {
      if (end > from) {
        await writeAll(this.#conn, uc.buf.subarray(from, end));
        this.#f.stats.responseBodyBytes += end - from;
        this.#bodyOut += end - from;
      }
      this.#leftover = filled - end;
      while (!fr.done) {
        const n = await uc.read(uc.buf);
        if (!n) return false;
        const stop = fr.feed(uc.buf, 0, n);
        await writeAll(this.#conn, uc.buf.subarray(0, stop));
        this.#f.stats.responseBodyBytes += stop;
        this.#bodyOut += stop;
        this.#leftover = n - stop;
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Streams the rest of the request body upstream; false when either side failed. */
  async #pumpBody(uc: UpstreamConn, framer: ChunkedFramer | null, left: number): Promise<boolean> {
    try {
      while (framer !== null ? !framer.done : left > 0) {
        if (this.#pos === this.#len) {
          this.#pos = this.#len = 0;
          let n: number | null;
          try {
            n = await this.#read(this.#buf);
          } catch (e) {
            this.#clientGone = true;
            throw e;
          }
          if (!n) {
            this.#clientGone = true;
            return false;
          }
          this.#len = n;
        }
        let stop: number;
        if (framer !== null) {
          stop = framer.feed(this.#buf, this.#pos, this.#len);
        } else {
          stop = this.#pos + Math.min(left, this.#len - this.#pos);
          left -= stop - this.#pos;
        }
        await writeAll(uc.conn, this.#buf.subarray(this.#pos, stop));
        this.#f.stats.requestBodyBytes += stop - this.#pos;
        this.#pos = stop;
      }
      return true;
    } catch (e) {
      if (e instanceof HttpParseError) this.#bodyError = e;
      return false;
    }
  }

  /** After 101 Switching Protocols, joins both connections byte for byte until both end. */
  async #splice(
    uc: UpstreamConn,
    res: ResponseHead,
    start: number,
    filled: number,
    stillAllowed: (() => boolean) | undefined,
  ): Promise<Done> {
    this.#sentStatus = res.status;
    const w = this.#out;
    w.reset();
    writeForwardedResponseHead(w, res, false);
    w.bytes(uc.buf, start, filled);
    try {
      await writeAll(this.#conn, w.view());
      if (this.#len > this.#pos) await writeAll(uc.conn, this.#buf.subarray(this.#pos, this.#len));
    } catch {
      this.#f.upstreams.discard(uc);
      return Done.Close;
    }
    this.#pos = this.#len = 0;
    // Silent both ways for the idle timeout: both ends go, not just the one that noticed (a
    // clean end of one side would only half-close the other and leave it held).
    const idle = this.#f.upgraded.watch(() => {
      this.#f.upstreams.discard(uc);
      this.abort();
    });
    const watched: OpenUpgrade | null = stillAllowed === undefined ? null : {
      stillAllowed,
      close: () => {
        this.#f.upstreams.discard(uc);
        this.abort();
      },
    };
    if (watched !== null) this.#f.rechecked.add(watched);
    try {
      await Promise.all([
        pipe(this.#conn, uc.conn, this.#buf, idle.touch).then((r) => {
          if (r.failed) this.#f.upstreams.discard(uc);
        }),
        pipe(uc.conn, this.#conn, uc.buf, idle.touch).then((r) => {
          if (r.failed) this.abort();
        }),
      ]);
    } finally {
      idle.stop();
      if (watched !== null) this.#f.rechecked.remove(watched);
    }
    this.#f.upstreams.discard(uc);
    return Done.Close;
  }
}

/** What one attempt produced. */
type _AttemptResult =
  | { done: Done; outcome?: undefined }
  | {
    done?: undefined;
    outcome: Outcome;
    sentUpstream: boolean;
    bodyError: HttpParseError | null;
    backoff?: number;
  };

const _EMPTY: ReadonlySet<string> = new Set();

/** The answer when the balancer has no endpoint to offer. */
function _noEndpoint(decision: RouteDecision): ProxyError {
  return noEndpointError(decision);
}

/** Whether `e` says the callee turned the call down before reading it (a refused mux stream). */
function _refusedUnread(e: unknown): boolean {
  return e instanceof Deno.errors.ConnectionRefused;
}

const _NO_BODY = new Uint8Array(0);
