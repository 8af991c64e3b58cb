/**
 * In-flight request counts shared by every worker thread of one proxy, so a destination's
 * circuit breaker `max_requests` is one limit for the whole process (as in Envoy), not one per
 * worker. The counts live in a `SharedArrayBuffer` handed to each worker and are updated with
 * `Atomics`; no message passing on the hot path.
 *
 * Slots are found by name: a 32-bit FNV-1a hash of the destination name, claimed with
 * compare-and-swap and linear probing, so workers agree on a slot without asking each other.
 * Two names with the same 32-bit hash would share a count (a chance of about 1 in 10^6 for
 * 4096 destinations); the effect is only a stricter limit for both.
 *
 * Each worker also keeps its own share of every count in a column of its own (written by that
 * worker alone, so a plain store), after the table and the rate buckets. When a worker crashes
 * holding requests, the main thread gives its column back with {@linkcode SharedLimits.releaseWorker}
 * before starting its replacement; otherwise the crashed worker's requests would stay counted
 * and the destination would answer `overloaded` for good.
 * @module
 */
import { fnv1a, SHARED_RATE_BYTES, SharedRates } from "./shared_rate.ts";

/** Slots in the table: twice the proxy's destination cap, so probes stay short. */
export const SHARED_LIMIT_SLOTS = 8192;
/** Bytes of the in-flight table: a key and a count per slot. */
const _COUNT_BYTES = SHARED_LIMIT_SLOTS * 2 * Int32Array.BYTES_PER_ELEMENT;
/** Bytes of the in-flight table and the rate limits' buckets, before the workers' columns. */
const _FIXED_BYTES = _COUNT_BYTES + SHARED_RATE_BYTES;
/** Bytes of one worker's column: its share of every slot's count. */
const _COLUMN_BYTES = SHARED_LIMIT_SLOTS * Int32Array.BYTES_PER_ELEMENT;

/** Bytes of a shared buffer for `workers` worker threads (the table, buckets and columns). */
export function sharedLimitBytes(workers: number): number {
  return _FIXED_BYTES + workers * _COLUMN_BYTES;
}

/** The shared table of in-flight counts, and the rate limits' shared buckets. */
export class SharedLimits {
  /** The buffer to post to workers (structured clone shares it). */
  readonly buffer: SharedArrayBuffer;
  /** The `RateLimit` buckets, in the same buffer. */
  readonly rates: SharedRates;
  readonly #keys: Int32Array;
  readonly #counts: Int32Array;
  /** This thread's column (its share of each count). */
  readonly #mine: Int32Array;

  /**
   * Wraps `buffer` (a new one for one worker when omitted) as seen by worker `worker`, whose
   * column its acquires and releases also update.
   */
  constructor(
    buffer: SharedArrayBuffer = new SharedArrayBuffer(sharedLimitBytes(1)),
    worker = 0,
  ) {
    const columns = (buffer.byteLength - _FIXED_BYTES) / _COLUMN_BYTES;
    if (!Number.isInteger(columns) || columns < 1) {
      throw new RangeError(
        `shared limits buffer is ${buffer.byteLength} bytes, expected ${
          sharedLimitBytes(1)
        } plus ${_COLUMN_BYTES} per extra worker`,
      );
    }
    if (!Number.isInteger(worker) || worker < 0 || worker >= columns) {
      throw new RangeError(`worker ${worker} has no column in a buffer for ${columns} workers`);
    }
    this.buffer = buffer;
    this.#keys = new Int32Array(buffer, 0, SHARED_LIMIT_SLOTS);
    this.#counts = new Int32Array(buffer, SHARED_LIMIT_SLOTS * 4, SHARED_LIMIT_SLOTS);
    this.rates = new SharedRates(buffer, _COUNT_BYTES);
    this.#mine = new Int32Array(buffer, _FIXED_BYTES + worker * _COLUMN_BYTES, SHARED_LIMIT_SLOTS);
  }

  /**
   * Gives back the in-flight requests worker `worker` held (main thread, after that worker
   * died and before its replacement starts in the same column).
   */
  releaseWorker(worker: number): void {
    const col = new Int32Array(
      this.buffer,
      _FIXED_BYTES + worker * _COLUMN_BYTES,
      SHARED_LIMIT_SLOTS,
    );
    for (let i = 0; i < SHARED_LIMIT_SLOTS; i++) {
      const held = Atomics.exchange(col, i, 0);
      if (held > 0) Atomics.sub(this.#counts, i, held);
    }
  }

  /** The slot of `name`, claiming one if no worker has yet. */
  slot(name: string): number {
    const key = fnv1a(name) | 1; // never 0, which marks a free slot
    let i = (key >>> 0) % SHARED_LIMIT_SLOTS;
    for (let probe = 0; probe < SHARED_LIMIT_SLOTS; probe++) {
      const was = Atomics.compareExchange(this.#keys, i, 0, key);
      if (was === 0 || was === key) return i;
      i = (i + 1) % SHARED_LIMIT_SLOTS;
    }
    // Unreachable while destinations stay under MAX_DESTINATIONS; fail loudly if not.
    throw new Error(`shared limits table full (${SHARED_LIMIT_SLOTS} slots)`);
  }

  /** Takes one unit of `slot` if its count is below `limit`. */
  tryAcquire(slot: number, limit: number): boolean {
    const c = this.#counts;
    while (true) {
      const cur = Atomics.load(c, slot);
      if (cur >= limit) return false;
      if (Atomics.compareExchange(c, slot, cur, cur + 1) === cur) {
        // Only this worker writes its column; the main thread reads it once this worker died.
        this.#mine[slot]!++;
        return true;
      }
    }
  }

  /** Returns one unit of `slot`. */
  release(slot: number): void {
    this.#mine[slot]!--;
    const before = Atomics.sub(this.#counts, slot, 1);
    if (before <= 0) throw new Error(`shared limit slot ${slot} released below 0`);
  }

  /** The current count of `slot`. */
  count(slot: number): number {
    return Atomics.load(this.#counts, slot);
  }
}

/** A destination's `max_requests` limit over a slot of a {@linkcode SharedLimits}. */
export class RequestLimit {
  readonly #table: SharedLimits;
  readonly #slot: number;
  #limit: number;

  /** Binds the limit of `name` to its slot in `table`. */
  constructor(table: SharedLimits, name: string, limit: number) {
    this.#table = table;
    this.#slot = table.slot(name);
    this.#limit = limit;
  }

  /** Takes one in-flight request if under the limit. */
  tryAcquire(): boolean {
    return this.#table.tryAcquire(this.#slot, this.#limit);
  }

  /** Ends one in-flight request. */
  release(): void {
    this.#table.release(this.#slot);
  }

  /** Requests in flight now, across all workers. */
  get active(): number {
    return this.#table.count(this.#slot);
  }

  /** The limit. */
  get limit(): number {
    return this.#limit;
  }

  /** Changes the limit (a new Policy) without touching the count. */
  setLimit(limit: number): void {
    this.#limit = limit;
  }
}
