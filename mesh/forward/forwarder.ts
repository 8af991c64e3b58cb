/**
 * The HTTP/1.1 forwarding engine's listener: the accept loop (with backpressure at the
 * connection cap), the sweep of idle and header-read deadlines, reloadable limits, and drain.
 * Each accepted connection is served by `request_path.ts`, which lists the per-request layers
 * in order. Built on `Deno.Conn` directly because fetch()/Deno.serve cost several times more
 * per request (see `docs/hot_path.md`).
 *
 * Retries happen only when safe (see `layer_retry_rule.ts`): nothing was sent to the client
 * yet, the request body is fully buffered (none, or Content-Length up to
 * `maxRetryBodyBytes`), and either the request never reached the upstream (connect failure)
 * or the method is idempotent. Timeouts bound the wait for the response head; bodies then
 * stream for as long as they flow.
 * @module
 */
import { closeQuietly, noDelay } from "../conn/io.ts";
import { ConnectionPool } from "./pool.ts";
import { OpenUpgrades } from "./open_upgrades.ts";
import { CoarseTimers } from "./coarse_timers.ts";
import { turnNow } from "./batch_clock.ts";
import { IdleSweeper } from "./idle.ts";
import {
  type ForwarderCtx,
  type ForwarderOptions,
  type ForwarderStats,
  newForwarderStats,
  SWEEP_INTERVAL_MS,
  withDefaults,
} from "./context.ts";
import { Session } from "./session.ts";
import { serveConnection } from "./request_path.ts";

export {
  DEFAULT_CLIENT_BUFFER_BYTES,
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_IDLE_MS,
  DEFAULT_MAX_CLIENT_CONNECTIONS,
  DEFAULT_MAX_RETRY_BODY_BYTES,
  type ForwarderOptions,
  type ForwarderStats,
  MAX_ATTEMPTS,
} from "./context.ts";

/** An HTTP/1.1 reverse-proxy listener. */
export class HttpForwarder {
  readonly #listener: Deno.Listener;
  readonly #opts: Required<Omit<ForwarderOptions, "pool">>;
  readonly #pool: ConnectionPool;
  readonly #ownPool: boolean;
  readonly #ctx: ForwarderCtx;
  readonly #sessions = new Set<Session>();
  readonly #served: Promise<void>;
  #slotFreed: (() => void) | null = null;
  readonly #sweeper: ReturnType<typeof setInterval>;

  /** Starts forwarding connections accepted on `listener`. */
  constructor(listener: Deno.Listener, opts: ForwarderOptions) {
    this.#listener = listener;
    this.#opts = withDefaults(opts);
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
      stats: newForwarderStats(),
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
      const release = this.#opts.admit === null ? null : this.#opts.admit(conn);
      if (this.#opts.admit !== null && release === null) {
        closeQuietly(conn);
        continue;
      }
      noDelay(conn);
      this.#ctx.stats.accepted++;
      const s = new Session(this.#ctx, conn);
      this.#sessions.add(s);
      serveConnection(s).finally(() => {
        release?.();
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
