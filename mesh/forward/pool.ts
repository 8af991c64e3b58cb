/**
 * Keep-alive upstream connections per endpoint.
 *
 * An idle connection always has one read outstanding: if it completes while the connection sits
 * in the pool, the peer closed it (or sent bytes nobody asked for) and the connection is evicted.
 * When the connection is taken, that same read becomes the first read of the response, so the
 * liveness check costs nothing on the hot path.
 * @module
 */
import type { Endpoint } from "./types.ts";
import { closeQuietly, noDelay } from "../conn/io.ts";
import { readerFor, type ReadFn } from "./direct_read.ts";

/** Most idle connections kept per endpoint. */
export const DEFAULT_MAX_IDLE_PER_ENDPOINT = 128;
/** How long an idle connection is kept, in ms. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** How long a connect may take, in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
/**
 * How long a connection is reused at most, in ms, by default: no limit. The mesh pool sets
 * one, so connections (and the peer certificates checked when they opened) are renewed
 * under steady traffic too.
 */
export const DEFAULT_MAX_CONNECTION_AGE_MS = Infinity;
/** Read buffer per upstream connection, in bytes. */
export const DEFAULT_UPSTREAM_BUFFER_BYTES = 16 * 1024;

/** Options for {@linkcode ConnectionPool}. */
export interface PoolOptions {
  /** @default DEFAULT_MAX_IDLE_PER_ENDPOINT */
  maxIdlePerEndpoint?: number;
  /** @default DEFAULT_IDLE_TIMEOUT_MS */
  idleTimeoutMs?: number;
  /** @default DEFAULT_CONNECT_TIMEOUT_MS */
  connectTimeoutMs?: number;
  /** @default DEFAULT_UPSTREAM_BUFFER_BYTES */
  bufferBytes?: number;
  /** Connections older than this are closed instead of reused. @default no limit */
  maxAgeMs?: number;
  /** Wall clock, ms since the epoch, to compare with certificate expiries. @default Date.now */
  wallNow?: () => number;
  /** Opens a connection; injectable for tests and TLS. @default Deno.connect */
  connect?: (ep: Endpoint) => Promise<Deno.Conn>;
  /** Millisecond clock. @default performance.now */
  now?: () => number;
}

/** An upstream connection with its read buffer. */
export interface UpstreamConn {
  /** The socket. */
  readonly conn: Deno.Conn;
  /** Reads from `conn` (0 or null at end of stream): its read op directly where possible. */
  readonly read: ReadFn;
  /** The endpoint it leads to. */
  readonly endpoint: Endpoint;
  /** Its read buffer; the holder owns it (and may grow it) while the connection is out of the pool. */
  buf: Uint8Array;
  /** A read started while idle; the holder must await it before issuing another read. */
  pending: Promise<number | null> | null;
  /** Whether it was taken from the pool (so a failure may be a stale-connection race). */
  reused: boolean;
  /** @internal */ _idle: boolean;
  /** @internal */ _idleSince: number;
  /** @internal */ _openedAt: number;
  /** @internal When it stops taking requests because its certificate nears expiry. */
  _retireAt: number;
  /** @internal Made once per connection, so an idle spell allocates no callbacks. */ _onIdleRead:
    () => void;
}

/** Raised when a connection cannot be opened. */
export class ConnectError extends Error {
  /** Why, without the endpoint (for the client's error message). */
  readonly reason: string;
  /** Creates a connect error for `ep`. */
  constructor(ep: Endpoint, why: string) {
    super(`connect to ${ep.key} failed: ${why}`);
    this.name = "ConnectError";
    this.reason = why;
  }
}

/**
 * Whether a connection may be reused: a connection can say it should not be by a `reusable`
 * property that is false (a mux stream whose session is going away).
 */
/**
 * Least time a connection is used for new requests, in ms, however close its certificate is to
 * expiry, so a certificate about to expire cannot make a caller dial in a loop.
 */
export const MIN_CONNECTION_LIFE_MS = 1_000;

/**
 * When a connection opened at `openedAt` with a certificate expiring at `notAfter` stops taking
 * new requests: halfway to the expiry, so the requests already on it have the other half to
 * finish before the callee closes it (it closes every connection when the caller's
 * certificate expires). Infinity without an expiry. `notAfter` is wall-clock time (ms since the
 * epoch) and `wallNow` the wall clock at `openedAt`, for callers whose `openedAt` is on another
 * clock (the pool's is monotonic).
 */
export function retireBeforeExpiry(
  openedAt: number,
  notAfter = Infinity,
  wallNow = openedAt,
): number {
  if (!Number.isFinite(notAfter)) return Infinity;
  return openedAt + Math.max(MIN_CONNECTION_LIFE_MS, Math.floor((notAfter - wallNow) / 2));
}

/** The expiry of the certificate a mesh connection presented (`localNotAfter`), if any. */
function _localNotAfter(conn: Deno.Conn): number {
  return (conn as { localNotAfter?: number }).localNotAfter ?? Infinity;
}

function _reusable(conn: Deno.Conn): boolean {
  return (conn as { reusable?: boolean }).reusable !== false;
}

/** Idle connections are kept per endpoint and per expected peer identity. */
export function poolKey(ep: Endpoint): string {
  if (ep.identity === undefined) return ep.key;
  // Endpoints are long-lived objects: a key built once saves a string per request.
  let k = _keys.get(ep);
  if (k === undefined || k.key !== ep.key || k.identity !== ep.identity) {
    k = { key: ep.key, identity: ep.identity, pool: `${ep.key} ${ep.identity}` };
    _keys.set(ep, k);
  }
  return k.pool;
}

const _keys = new WeakMap<Endpoint, { key: string; identity: string; pool: string }>();

/** Counters for tests and metrics. */
export interface PoolStats {
  /** Connections opened. */
  opened: number;
  /** Times an idle connection was reused. */
  reused: number;
  /** Idle connections evicted because the peer closed them or sent unsolicited bytes. */
  evictedDead: number;
  /** Idle connections closed by the idle timeout or the per-endpoint cap. */
  evictedIdle: number;
  /**
   * Connections closed instead of reused because they reached the maximum age or said they
   * should not be reused.
   */
  retired: number;
  /** Connections idle right now. */
  idle: number;
}

/** Keep-alive connections per endpoint, bounded and swept. */
export class ConnectionPool {
  readonly #idle = new Map<string, UpstreamConn[]>();
  readonly #maxIdle: number;
  readonly #idleTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #bufferBytes: number;
  readonly #maxAgeMs: number;
  readonly #wallNow: () => number;
  readonly #connect: (ep: Endpoint) => Promise<Deno.Conn>;
  readonly #now: () => number;
  #timer: ReturnType<typeof setInterval> | null = null;
  #closed = false;
  readonly #stats: PoolStats = {
    opened: 0,
    reused: 0,
    evictedDead: 0,
    evictedIdle: 0,
    retired: 0,
    idle: 0,
  };

  /** Creates a pool; call {@linkcode ConnectionPool.close} to release everything. */
  constructor(opts: PoolOptions = {}) {
    this.#maxIdle = opts.maxIdlePerEndpoint ?? DEFAULT_MAX_IDLE_PER_ENDPOINT;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#bufferBytes = opts.bufferBytes ?? DEFAULT_UPSTREAM_BUFFER_BYTES;
    this.#maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_CONNECTION_AGE_MS;
    this.#wallNow = opts.wallNow ?? Date.now;
    this.#connect = opts.connect ??
      ((ep) => Deno.connect({ hostname: ep.hostname, port: ep.port }));
    this.#now = opts.now ?? (() => performance.now());
  }

  /** A snapshot of the counters. */
  stats(): PoolStats {
    return { ...this.#stats };
  }

  /** Takes an idle connection to `ep`, or opens one (unless `fresh` insists on a new one). */
  async acquire(ep: Endpoint, fresh = false): Promise<UpstreamConn> {
    return (fresh ? null : this.takeIdle(ep)) ?? await this.#open(ep);
  }

  /**
   * Takes an idle connection to `ep` without waiting, or returns null (then `acquire` opens
   * one). The per-request path calls this first, so a pooled connection costs no promise.
   */
  takeIdle(ep: Endpoint): UpstreamConn | null {
    const list = this.#idle.get(poolKey(ep));
    while (list !== undefined && list.length > 0) {
      const uc = list.pop()!;
      this.#stats.idle--;
      if (!uc._idle) continue;
      uc._idle = false;
      if (
        !_reusable(uc.conn) ||
        (this.#maxAgeMs !== Infinity && this.#now() - uc._openedAt >= this.#maxAgeMs) ||
        (uc._retireAt !== Infinity && this.#now() >= uc._retireAt)
      ) {
        this.#stats.retired++;
        closeQuietly(uc.conn);
        continue;
      }
      uc.reused = true;
      this.#stats.reused++;
      return uc;
    }
    return null;
  }

  async #open(ep: Endpoint): Promise<UpstreamConn> {
    if (this.#closed) throw new ConnectError(ep, "pool closed");
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const attempt = this.#connect(ep);
    const conn = await Promise.race([
      attempt,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(new ConnectError(ep, `timed out after ${this.#connectTimeoutMs}ms`));
        }, this.#connectTimeoutMs);
      }),
    ]).catch((e) => {
      if (timedOut) attempt.then((c) => closeQuietly(c), () => {});
      throw e instanceof ConnectError
        ? e
        : new ConnectError(ep, e instanceof Error ? e.message : String(e));
    }).finally(() => clearTimeout(timer));
    noDelay(conn);
    this.#stats.opened++;
    const uc: UpstreamConn = {
      conn,
      read: readerFor(conn),
      endpoint: ep,
      buf: new Uint8Array(this.#bufferBytes),
      pending: null,
      reused: false,
      _idle: false,
      _idleSince: 0,
      _openedAt: this.#maxAgeMs === Infinity ? 0 : this.#now(),
      // The pool's clock is monotonic (`performance.now()` scale), certificates' are the wall's.
      _retireAt: retireBeforeExpiry(this.#now(), _localNotAfter(conn), this.#wallNow()),
      _onIdleRead: () => this.#settledWhileIdle(uc),
    };
    return uc;
  }

  /**
   * Returns a connection that has no request in flight and no unread bytes. The caller must not
   * touch it afterwards. Connections over the per-endpoint cap are closed.
   */
  release(uc: UpstreamConn): void {
    if (this.#closed) {
      closeQuietly(uc.conn);
      return;
    }
    const now = this.#now();
    if (now - uc._openedAt >= this.#maxAgeMs || now >= uc._retireAt || !_reusable(uc.conn)) {
      this.#stats.retired++;
      closeQuietly(uc.conn);
      return;
    }
    const key = poolKey(uc.endpoint);
    let list = this.#idle.get(key);
    if (list === undefined) {
      list = [];
      this.#idle.set(key, list);
    }
    if (list.length >= this.#maxIdle) {
      this.#stats.evictedIdle++;
      closeQuietly(uc.conn);
      return;
    }
    uc._idle = true;
    uc._idleSince = now;
    const read = uc.read(uc.buf);
    uc.pending = read;
    read.then(uc._onIdleRead, uc._onIdleRead);
    list.push(uc);
    this.#stats.idle++;
    this.#ensureSweeper();
  }

  /** Closes a connection that must not be reused. */
  discard(uc: UpstreamConn): void {
    uc._idle = false;
    closeQuietly(uc.conn);
  }

  #settledWhileIdle(uc: UpstreamConn): void {
    if (!uc._idle) return; // Taken already: the holder consumes this read.
    this.#remove(uc);
    this.#stats.evictedDead++;
  }

  #remove(uc: UpstreamConn): void {
    uc._idle = false;
    closeQuietly(uc.conn);
    const list = this.#idle.get(poolKey(uc.endpoint));
    if (list === undefined) return;
    const i = list.indexOf(uc);
    if (i !== -1) {
      list.splice(i, 1);
      this.#stats.idle--;
    }
  }

  #ensureSweeper(): void {
    if (this.#timer !== null) return;
    const every = Math.max(100, Math.min(this.#idleTimeoutMs / 2, 5_000));
    const timer = setInterval(() => this.sweep(), every);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Closes connections idle longer than the idle timeout (also run periodically). */
  sweep(): void {
    const cutoff = this.#now() - this.#idleTimeoutMs;
    for (const list of this.#idle.values()) {
      for (let i = list.length - 1; i >= 0; i--) {
        const uc = list[i]!;
        if (uc._idleSince <= cutoff) {
          this.#remove(uc);
          this.#stats.evictedIdle++;
        }
      }
    }
  }

  /** Closes every idle connection and stops the sweeper; held connections close on release. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const list of this.#idle.values()) {
      for (const uc of [...list]) this.#remove(uc);
    }
    this.#idle.clear();
  }
}
