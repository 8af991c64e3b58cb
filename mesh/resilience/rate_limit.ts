/**
 * Token bucket for the RateLimit resource: `requests_per_second` refill, `burst` capacity.
 * Refilled lazily from the injected clock on each call, so there is no timer.
 * @module
 */

/** A request was refused by the destination's rate limit: SPEC's 429. */
export class RateLimitedError extends Error {
  override readonly name = "RateLimitedError";
  /** HTTP status the proxy answers with. */
  readonly status = 429;
  /** Creates the error; `retryAfterMs` is when one token will be available. */
  constructor(
    readonly service: string,
    readonly requestsPerSecond: number,
    readonly retryAfterMs: number,
  ) {
    super(`rate limited: ${service} allows ${requestsPerSecond} requests per second`);
  }
}

/** Options of {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Refill rate in tokens per second; must be > 0. */
  requestsPerSecond: number;
  /** Capacity; the bucket starts full. @default requestsPerSecond */
  burst?: number;
  /** Clock in ms. */
  now: () => number;
}

/** A token bucket. */
export class TokenBucket {
  /** Refill rate per second. */
  readonly requestsPerSecond: number;
  /** Capacity. */
  readonly burst: number;
  private readonly _now: () => number;
  private readonly _perMs: number;
  private _tokens: number;
  private _stampMs: number;

  /** Creates a full bucket. */
  constructor(opts: TokenBucketOptions) {
    if (!(opts.requestsPerSecond > 0)) {
      throw new RangeError(`requests_per_second must be > 0, got ${opts.requestsPerSecond}`);
    }
    this.requestsPerSecond = opts.requestsPerSecond;
    this.burst = Math.max(1, opts.burst ?? opts.requestsPerSecond);
    this._now = opts.now;
    this._perMs = opts.requestsPerSecond / 1000;
    this._tokens = this.burst;
    this._stampMs = opts.now();
  }

  /** Takes `n` tokens if available. */
  tryTake(n = 1): boolean {
    this._refill();
    if (this._tokens < n) return false;
    this._tokens -= n;
    return true;
  }

  /** Tokens available now (fractional). */
  available(): number {
    this._refill();
    return this._tokens;
  }

  /** Ms until `n` tokens are available (0 when they are). */
  waitMs(n = 1): number {
    this._refill();
    return this._tokens >= n ? 0 : (n - this._tokens) / this._perMs;
  }

  private _refill(): void {
    const now = this._now();
    const elapsed = now - this._stampMs;
    if (elapsed <= 0) return; // a clock stepping back adds nothing
    this._tokens = Math.min(this.burst, this._tokens + elapsed * this._perMs);
    this._stampMs = now;
  }
}
