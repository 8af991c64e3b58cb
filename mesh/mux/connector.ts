/**
 * The client side of skein-mux/1 for the connection pool: `connect(ep)` hands out a new stream
 * on one of an endpoint's sessions (one by default), dialling a session only when none can take
 * the stream.
 * A peer that does not negotiate the mux ALPN gets plain connections for a while.
 * @module
 */
import type { Endpoint } from "../forward/types.ts";
import { poolKey, retireBeforeExpiry } from "../forward/pool.ts";
import { closeQuietly } from "../conn/io.ts";
import { MuxSession } from "./session.ts";

/**
 * Sessions kept per endpoint (per calling worker). One: every extra session splits the
 * batches, and measured, two cost the callee about 20% more CPU per call for no more
 * throughput. A callee's workers still share the load over its many callers' sessions.
 */
export const DEFAULT_SESSIONS_PER_ENDPOINT = 1;
/** How long a session with no streams is kept, in ms. */
export const DEFAULT_IDLE_SESSION_MS = 60_000;
/**
 * How long a session takes new streams, in ms, by default: then it is retired and closed once
 * its last stream ends, so sessions (and the certificates checked when they opened) are
 * renewed under steady traffic too. The proxy's pool retires streams at the same age.
 */
export const DEFAULT_MAX_SESSION_AGE_MS = 10 * 60_000;
/** How long an endpoint that did not negotiate the mux is dialled plainly, in ms. */
export const PLAIN_RETRY_AFTER_MS = 60_000;
/** Most endpoints tracked; the oldest idle one is forgotten beyond it. */
export const MAX_TRACKED_ENDPOINTS = 4096;

/** What a dial produced: the connection, and whether the peer agreed to the mux. */
export interface MuxDial {
  /** The verified connection. */
  conn: Deno.Conn;
  /** Whether the mux ALPN was negotiated. */
  mux: boolean;
  /** The peer's verified SPIFFE id. */
  peerIdentity: string | null;
  /**
   * When the certificate this side presented expires, ms since the epoch: the callee closes
   * the connection then, whatever streams are in flight. @default Infinity
   */
  notAfter?: number;
}

/**
 * When a session opened at `openedAt` stops taking new streams: at its maximum age, or halfway
 * to its certificate's expiry when that comes first, so the calls already on it have the other
 * half to finish before the callee cuts the connection (only new calls move to a new session,
 * made with the renewed certificate).
 */
export function sessionRetireAt(openedAt: number, maxAgeMs: number, notAfter = Infinity): number {
  return Math.min(openedAt + maxAgeMs, retireBeforeExpiry(openedAt, notAfter));
}

/** Options of {@linkcode MuxConnector}. */
export interface MuxConnectorOptions {
  /** Opens a verified connection offering the mux ALPN. */
  dial: (ep: Endpoint) => Promise<MuxDial>;
  /**
   * Opens a plain connection (no mux offered) to a peer known not to take the mux; it may use a
   * cheaper client than `dial`, which must be able to carry a session. @default `dial`
   */
  dialPlain?: (ep: Endpoint) => Promise<Deno.Conn>;
  /** @default DEFAULT_SESSIONS_PER_ENDPOINT */
  sessionsPerEndpoint?: number;
  /** @default DEFAULT_IDLE_SESSION_MS */
  idleSessionMs?: number;
  /** @default DEFAULT_MAX_SESSION_AGE_MS */
  maxSessionAgeMs?: number;
  /** Millisecond clock. @default Date.now */
  now?: () => number;
}

/** Counters for tests and metrics. */
export interface MuxConnectorStats {
  /** Sessions dialled. */
  sessions: number;
  /** Streams opened. */
  streams: number;
  /** Dials that came back without the mux (plain connections handed out). */
  plain: number;
  /** Sessions open now. */
  open: number;
  /** Connection writes over all sessions, closed ones included. */
  writes: number;
  /** Frames sent over all sessions, closed ones included (frames / writes = batching). */
  frames: number;
}

interface _Endpoint {
  sessions: MuxSession[];
  dialing: Promise<Deno.Conn | null> | null;
  plainUntil: number;
  idleSince: Map<MuxSession, number>;
}

/** Hands out mux streams (or plain connections) per endpoint. */
export class MuxConnector {
  readonly #dial: (ep: Endpoint) => Promise<MuxDial>;
  readonly #dialPlain: ((ep: Endpoint) => Promise<Deno.Conn>) | undefined;
  readonly #perEndpoint: number;
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  readonly #retireAt = new WeakMap<MuxSession, number>();
  readonly #retireTimers = new Map<MuxSession, ReturnType<typeof setTimeout>>();
  readonly #now: () => number;
  readonly #eps = new Map<string, _Endpoint>();
  readonly #stats = { sessions: 0, streams: 0, plain: 0 };
  /** Writes and frames of sessions already closed. */
  readonly #closedTotals = { writes: 0, frames: 0 };
  #timer: ReturnType<typeof setInterval> | null = null;
  #closed = false;

  /** Creates a connector; call {@linkcode MuxConnector.close} to end its sessions. */
  constructor(opts: MuxConnectorOptions) {
    this.#dial = opts.dial;
    this.#dialPlain = opts.dialPlain;
    this.#perEndpoint = Math.max(1, opts.sessionsPerEndpoint ?? DEFAULT_SESSIONS_PER_ENDPOINT);
    this.#idleMs = opts.idleSessionMs ?? DEFAULT_IDLE_SESSION_MS;
    this.#maxAgeMs = opts.maxSessionAgeMs ?? DEFAULT_MAX_SESSION_AGE_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** A snapshot of the counters. */
  stats(): MuxConnectorStats {
    let open = 0;
    let writes = this.#closedTotals.writes;
    let frames = this.#closedTotals.frames;
    for (const e of this.#eps.values()) {
      open += e.sessions.length;
      for (const s of e.sessions) {
        const st = s.stats();
        writes += st.flushes;
        frames += st.frames;
      }
    }
    return { ...this.#stats, open, writes, frames };
  }

  /** A new stream to `ep`, or a plain connection when the peer does not speak the mux. */
  async connect(ep: Endpoint): Promise<Deno.Conn> {
    if (this.#closed) throw new Deno.errors.ConnectionRefused("connector closed");
    const key = poolKey(ep);
    let e = this.#eps.get(key);
    if (e === undefined) {
      this.#forgetOldest();
      e = { sessions: [], dialing: null, plainUntil: 0, idleSince: new Map() };
      this.#eps.set(key, e);
      this.#ensureSweeper();
    }
    while (true) {
      if (e.plainUntil > this.#now()) {
        if (this.#dialPlain !== undefined) {
          const c = await this.#dialPlain(ep);
          this.#stats.plain++;
          return c;
        }
        const d = await this.#dial(ep);
        if (!d.mux) {
          this.#stats.plain++;
          return d.conn;
        }
        e.plainUntil = 0;
        return this.#openOn(e, this.#adopt(e, d));
      }
      const best = this.#leastLoaded(e);
      if (best !== null && (this.#fresh(e) >= this.#perEndpoint || e.dialing !== null)) {
        return this.#openOn(e, best);
      }
      // Dial every missing session at once and let all waiting callers spread over them, so
      // the streams of a burst are shared evenly rather than piled on the first session.
      const mine = e.dialing === null;
      e.dialing ??= this.#dialMissing(ep, e).finally(() => (e!.dialing = null));
      const plain = await e.dialing;
      // A plain connection is the dialling caller's; the others dial their own next round.
      if (plain !== null && mine) return plain;
    }
  }

  /**
   * Dials the sessions `e` lacks, in parallel, and waits for all of them. Returns a plain
   * connection when the peer turned the mux down (for the caller that started the dial);
   * throws the first error when no dial succeeded.
   */
  async #dialMissing(ep: Endpoint, e: _Endpoint): Promise<Deno.Conn | null> {
    const n = Math.max(1, this.#perEndpoint - this.#fresh(e));
    const results = await Promise.allSettled(Array.from({ length: n }, () => this.#dial(ep)));
    let plain: Deno.Conn | null = null;
    let firstError: unknown = null;
    let ok = 0;
    for (const r of results) {
      if (r.status === "rejected") {
        firstError ??= r.reason;
        continue;
      }
      ok++;
      if (r.value.mux) {
        this.#adopt(e, r.value);
        continue;
      }
      this.#stats.plain++;
      e.plainUntil = this.#now() + PLAIN_RETRY_AFTER_MS;
      if (plain === null) plain = r.value.conn;
      else closeQuietly(r.value.conn);
    }
    if (ok === 0) throw firstError;
    return plain;
  }

  #openOn(e: _Endpoint, s: MuxSession): Deno.Conn {
    e.idleSince.delete(s);
    this.#stats.streams++;
    return s.open();
  }

  #retired(s: MuxSession, now = this.#now()): boolean {
    return !s.usable || now >= (this.#retireAt.get(s) ?? Infinity);
  }

  /** Sessions of `e` that take new streams. */
  #fresh(e: _Endpoint): number {
    const now = this.#now();
    let n = 0;
    for (const s of e.sessions) if (!this.#retired(s, now)) n++;
    return n;
  }

  #leastLoaded(e: _Endpoint): MuxSession | null {
    let best: MuxSession | null = null;
    const now = this.#now();
    for (const s of e.sessions) {
      if (this.#retired(s, now)) continue;
      if (best === null || s.streamCount < best.streamCount) best = s;
    }
    return best;
  }

  #adopt(e: _Endpoint, d: MuxDial): MuxSession {
    const s = new MuxSession(d.conn, {
      role: "client",
      peerIdentity: d.peerIdentity,
      onClose: () => {
        const i = e.sessions.indexOf(s);
        if (i !== -1) {
          e.sessions.splice(i, 1);
          const st = s.stats();
          this.#closedTotals.writes += st.flushes;
          this.#closedTotals.frames += st.frames;
        }
        e.idleSince.delete(s);
        const t = this.#retireTimers.get(s);
        if (t !== undefined) clearTimeout(t);
        this.#retireTimers.delete(s);
      },
    });
    this.#stats.sessions++;
    const openedAt = this.#now();
    const retireAt = sessionRetireAt(openedAt, this.#maxAgeMs, d.notAfter);
    this.#retireAt.set(s, retireAt);
    if (retireAt - openedAt < this.#maxAgeMs) {
      // Pooled streams must stop being reused by then too, not only new streams: a timer,
      // since the pool checks a stream's `reusable` without a clock.
      const t = setTimeout(() => {
        this.#retireTimers.delete(s);
        s.retire();
        if (s.streamCount === 0) s.close();
      }, Math.max(0, retireAt - openedAt));
      Deno.unrefTimer(t);
      this.#retireTimers.set(s, t);
    }
    if (this.#closed) s.close();
    else e.sessions.push(s);
    return s;
  }

  #forgetOldest(): void {
    if (this.#eps.size < MAX_TRACKED_ENDPOINTS) return;
    for (const [k, e] of this.#eps) {
      if (e.sessions.length === 0 && e.dialing === null) {
        this.#eps.delete(k);
        return;
      }
    }
  }

  #ensureSweeper(): void {
    if (this.#timer !== null || this.#closed) return;
    const every = Math.max(100, Math.min(this.#idleMs / 2, 5_000));
    this.#timer = setInterval(() => this.sweep(), every);
    Deno.unrefTimer(this.#timer);
  }

  /** Closes sessions that have had no stream for the idle time (also run periodically). */
  sweep(): void {
    const now = this.#now();
    for (const [k, e] of this.#eps) {
      for (const s of [...e.sessions]) {
        const retired = this.#retired(s, now);
        if (s.streamCount > 0 || retired) {
          e.idleSince.delete(s);
          if (s.streamCount === 0 && retired) s.close();
          continue;
        }
        const since = e.idleSince.get(s);
        if (since === undefined) e.idleSince.set(s, now);
        else if (now - since >= this.#idleMs) s.close();
      }
      if (e.sessions.length === 0 && e.dialing === null && e.plainUntil <= now) this.#eps.delete(k);
    }
  }

  /** Closes every session; streams on them fail. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const e of this.#eps.values()) for (const s of [...e.sessions]) s.close();
    this.#eps.clear();
  }
}
