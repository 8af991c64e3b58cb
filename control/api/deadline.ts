/**
 * Timeouts shared by operations that start close together: one timer per bucket of time instead
 * of a timer, a race and an abort controller per write. An operation started in a bucket times
 * out between `timeoutMs` and `timeoutMs + bucketMs` after it started.
 * @module
 */

/** Default width of a bucket: the most a shared timeout may fire late. */
export const DEADLINE_BUCKET_MS = 50;

/** Raised by {@linkcode DeadlineLease.bound} when the lease's deadline passed first. */
export class DeadlineExceeded extends Error {
  /** The timeout the operation had, in ms. */
  readonly timeoutMs: number;

  /** Creates the error for an operation bounded by `timeoutMs`. */
  constructor(timeoutMs: number) {
    super(`deadline of ${timeoutMs} ms exceeded`);
    this.name = "DeadlineExceeded";
    this.timeoutMs = timeoutMs;
  }
}

/** One operation's share of a bucket: its signal and the race against the deadline. */
export interface DeadlineLease {
  /** Aborts at the bucket's deadline; hand it to the operation so it can stop its work. */
  readonly signal: AbortSignal;
  /**
   * Settles like `p`, or rejects with {@linkcode DeadlineExceeded} once the deadline passed,
   * whether or not the operation honours the signal; releases the lease either way.
   */
  bound<T>(p: Promise<T>): Promise<T>;
}

interface _Bucket {
  readonly ac: AbortController;
  /** Rejects at the deadline; every lease of the bucket races against it. */
  readonly expired: Promise<never>;
  readonly timer: ReturnType<typeof setTimeout>;
  /** New operations join until then (ms, performance.now()). */
  readonly openUntil: number;
  pending: number;
}

/** Hands out {@linkcode DeadlineLease}s from time buckets of one timeout. */
export class SharedDeadlines {
  readonly timeoutMs: number;
  readonly bucketMs: number;
  #open: _Bucket | null = null;

  /** Deadlines of `timeoutMs`, shared within buckets of `bucketMs`. */
  constructor(timeoutMs: number, bucketMs: number = DEADLINE_BUCKET_MS) {
    this.timeoutMs = timeoutMs;
    this.bucketMs = bucketMs;
  }

  /** A lease for an operation starting now. */
  lease(): DeadlineLease {
    const now = performance.now();
    let b = this.#open;
    if (b === null || now >= b.openUntil) b = this.#open = this.#bucket(now);
    b.pending++;
    const bucket = b;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      // An idle bucket's timer goes at once, so nothing outlives the operations it bounds.
      if (--bucket.pending === 0) {
        clearTimeout(bucket.timer);
        if (this.#open === bucket) this.#open = null;
      }
    };
    return {
      signal: bucket.ac.signal,
      bound<T>(p: Promise<T>): Promise<T> {
        return Promise.race([p, bucket.expired]).finally(release);
      },
    };
  }

  #bucket(now: number): _Bucket {
    const ac = new AbortController();
    const expired = Promise.withResolvers<never>();
    // Nobody may be racing when it fires; that is not an unhandled rejection.
    expired.promise.catch(() => {});
    const timeoutMs = this.timeoutMs;
    const timer = setTimeout(() => {
      if (this.#open === bucket) this.#open = null;
      expired.reject(new DeadlineExceeded(timeoutMs));
      ac.abort(new DeadlineExceeded(timeoutMs));
    }, timeoutMs + this.bucketMs);
    const bucket: _Bucket = {
      ac,
      expired: expired.promise,
      timer,
      openUntil: now + this.bucketMs,
      pending: 0,
    };
    return bucket;
  }
}

/** Raised by {@linkcode bounded} when its timer fired before the operation settled. */
export class BoundTimeout extends Error {}

/** Races `p` against a timer of its own; on timeout aborts `ac` and throws {@linkcode BoundTimeout}. */
export async function bounded<T>(p: Promise<T>, ms: number, ac: AbortController): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(new BoundTimeout());
    }, ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
