/**
 * Per-identity rate of registry writes from proxies: a proxy stuck re-registering in a loop
 * (1,000 times a second, say) gets 429 `too_many_writes` and a counter moves, instead of
 * filling the Raft log and slowing every other write. Operators are not limited here. Pure:
 * the caller passes the time.
 * @module
 */
import { MAX_INSTANCES_PER_PROXY_IDENTITY } from "../registry/mod.ts";

/** Writes a second one proxy identity may make, on average. */
export const PROXY_WRITES_PER_SECOND = 50;
/**
 * Writes one proxy identity may make at once after being quiet: a proxy starting up registers
 * every instance it fronts, up to its quota, in one go.
 */
export const PROXY_WRITE_BURST = MAX_INSTANCES_PER_PROXY_IDENTITY + 64;
/** Identities tracked; the least recently seen is forgotten past this. */
export const MAX_TRACKED_WRITERS = 65_536;

/** Token buckets by identity. */
export class WriteRate {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  /** Writes refused since start. */
  refused = 0;

  /** Creates buckets refilling `perSecond` up to `burst`. */
  constructor(
    readonly perSecond = PROXY_WRITES_PER_SECOND,
    readonly burst = PROXY_WRITE_BURST,
    readonly maxTracked = MAX_TRACKED_WRITERS,
  ) {}

  /** Takes one write for `key` at `now` (ms); false when its bucket is empty. */
  take(key: string, now: number): boolean {
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    this.#buckets.delete(key);
    b.tokens = Math.min(this.burst, b.tokens + Math.max(0, now - b.at) * this.perSecond / 1000);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    else this.refused++;
    // Re-inserted last, so the first key is the least recently seen.
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.maxTracked) {
      this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    return ok;
  }

  /** Milliseconds until `key` may write again at `now`. */
  retryAfterMs(key: string, now: number): number {
    const b = this.#buckets.get(key);
    if (!b) return 0;
    const tokens = b.tokens + Math.max(0, now - b.at) * this.perSecond / 1000;
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) * 1000 / this.perSecond);
  }

  /** Identities tracked now. */
  get tracked(): number {
    return this.#buckets.size;
  }
}
