/**
 * Token buckets shared by every worker thread of one proxy, so a `RateLimit` is one limit
 * for the whole process rather than one per worker. Each bucket is a single 64-bit cell in a
 * `SharedArrayBuffer` holding its GCRA "theoretical arrival time" (ns since the epoch): one
 * compare-and-swap per admitted request, no message passing, no timer.
 *
 * GCRA is a token bucket written as one number: with `T = 1 s / rate`, a request at `now` is
 * admitted when `max(tat, now) + T - now <= burst × T`, and then `tat` moves to that sum. So
 * at most `burst` requests pass at once and `rate` per second after that.
 *
 * Cells are found by name like {@linkcode SharedLimits} slots (FNV-1a, linear probing); two
 * names with the same 32-bit hash would share a bucket, which only makes both stricter. For
 * the same reason a full table hands out one overflow bucket, shared by every name that found
 * no room, rather than failing: a limit then holds, stricter, instead of none.
 * @module
 */

/** Buckets in the table (services × callers with `per: caller`). */
export const SHARED_RATE_CELLS = 4096;
/** Bytes of the table: a 32-bit key and a 64-bit cell per bucket. */
export const SHARED_RATE_BYTES = SHARED_RATE_CELLS * (4 + 8);

/** The ns clock every worker agrees on (wall time; `performance.now()` alone is per thread). */
export function sharedNowNs(): number {
  return (performance.timeOrigin + performance.now()) * 1e6;
}

/** What one {@linkcode SharedRates.take} found. */
export interface TakeResult {
  /** Whether the request is admitted. */
  ok: boolean;
  /** Requests that could still pass at once after this one (0 when refused). */
  remaining: number;
  /** When refused: ms until one request would be admitted. */
  waitMs: number;
}

/** The table of shared buckets, on its part of a `SharedArrayBuffer`. */
export class SharedRates {
  readonly #keys: Int32Array;
  readonly #tat: BigInt64Array;
  /** The bucket shared by names that found the table full (never claimed by a name). */
  readonly overflowCell = SHARED_RATE_CELLS - 1;
  #overflowed = 0;

  /** Wraps `SHARED_RATE_BYTES` of `buffer` from `byteOffset` (a multiple of 8). */
  constructor(buffer: SharedArrayBuffer, byteOffset = 0) {
    this.#tat = new BigInt64Array(buffer, byteOffset, SHARED_RATE_CELLS);
    this.#keys = new Int32Array(buffer, byteOffset + SHARED_RATE_CELLS * 8, SHARED_RATE_CELLS);
  }

  /**
   * The bucket of `name`, claiming one if no worker has yet; {@linkcode overflowCell} when
   * the table is full.
   */
  cell(name: string): number {
    const key = fnv1a(name) | 1; // never 0, which marks a free cell
    const named = SHARED_RATE_CELLS - 1;
    let i = (key >>> 0) % named;
    for (let probe = 0; probe < named; probe++) {
      const was = Atomics.compareExchange(this.#keys, i, 0, key);
      if (was === 0 || was === key) return i;
      i = (i + 1) % named;
    }
    this.#overflowed++;
    return this.overflowCell;
  }

  /** Names given the overflow bucket by this view since it was made (admin pages, tests). */
  get overflowed(): number {
    return this.#overflowed;
  }

  /** Admits one request on `cell` at `rate` per second with `burst`, at `nowNs`, or refuses it. */
  take(cell: number, rate: number, burst: number, nowNs: number): TakeResult {
    const tNs = Math.max(1, 1e9 / rate);
    const t = BigInt(Math.round(tNs));
    const span = BigInt(Math.round(tNs * burst));
    const now = BigInt(Math.round(nowNs));
    const a = this.#tat;
    while (true) {
      const stored = Atomics.load(a, cell);
      const next = (stored > now ? stored : now) + t;
      const used = next - now;
      if (used > span) {
        return { ok: false, remaining: 0, waitMs: Number(used - span) / 1e6 };
      }
      if (Atomics.compareExchange(a, cell, stored, next) === stored) {
        return { ok: true, remaining: Math.floor(Number(span - used) / tNs), waitMs: 0 };
      }
    }
  }
}

/** The 32-bit FNV-1a hash of a name, which finds its slot or cell in the shared tables. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}
