/**
 * Retry decisions: which outcomes and methods may be retried, backoff with full jitter, and a
 * retry budget so retries cannot multiply an outage.
 *
 * `on` conditions (Policy `retries.on`):
 * - `5xx`: any 5xx response, and a per-try timeout (treated as the 504 it becomes);
 * - `gateway_error`: 502, 503, 504 and a per-try timeout;
 * - `reset`: the connection dropped before a complete response head;
 * - `connect_failure`: no connection could be made (nothing reached the endpoint);
 * - `retriable_4xx`: 409 Conflict (as Envoy), which is safe to repeat by definition.
 *
 * `attempts` counts all tries including the first (`attempts: 3` = at most 2 retries).
 * Only idempotent methods are retried unless `retryNonIdempotent`, except after a
 * `connect_failure`: a call that reached no endpoint cannot have taken effect, so it is retried
 * whatever its method (as Envoy does). The forwarder must keep the request body (bounded) to be
 * able to retry a request that has one.
 *
 * The budget (Linkerd/Envoy style): over a sliding window, retries may add at most
 * `budgetPercent` % on top of the original requests, plus `minRetriesPerSecond` so a
 * low-traffic service can still retry at all.
 * @module
 */
import type { Outcome } from "./outcome.ts";

/** A condition of `retries.on`. */
export type RetryOn = "5xx" | "gateway_error" | "reset" | "connect_failure" | "retriable_4xx";

/** All retry conditions, for validation. */
export const RETRY_ON_VALUES: readonly RetryOn[] = [
  "5xx",
  "gateway_error",
  "reset",
  "connect_failure",
  "retriable_4xx",
];

/** Methods whose repetition has the same effect as one request (RFC 9110 9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "PUT",
  "DELETE",
  "TRACE",
]);

/** Upper bound on `attempts`, whatever the config says. */
export const MAX_RETRY_ATTEMPTS = 10;
/** Buckets of the budget's sliding window; more buckets slide more smoothly. */
export const RETRY_BUDGET_BUCKETS = 10;

/** Defaults of the retry options. */
export const RETRY_DEFAULTS = Object.freeze({
  on: ["5xx", "reset", "connect_failure"] as readonly RetryOn[],
  backoffBaseMs: 25,
  backoffMaxMs: 1000,
  budgetPercent: 20,
  minRetriesPerSecond: 10,
  budgetWindowMs: 10_000,
});

/** Options of {@linkcode RetryPolicy}, from Policy `retries` with durations in ms. */
export interface RetryOptions {
  /** Total tries including the first; clamped to 1..MAX_RETRY_ATTEMPTS. */
  attempts: number;
  /** Conditions that allow a retry. @default ["5xx", "reset", "connect_failure"] */
  on?: readonly RetryOn[];
  /** First backoff ceiling. @default 25 */
  backoffBaseMs?: number;
  /** Largest backoff ceiling. @default 1000 */
  backoffMaxMs?: number;
  /** Retries may add at most this % on top of requests. @default 20 */
  budgetPercent?: number;
  /** Retries always allowed per second of window, on top of the percentage. @default 10 */
  minRetriesPerSecond?: number;
  /** Length of the budget's sliding window. @default 10000 */
  budgetWindowMs?: number;
  /** Also retry POST, PATCH and other non-idempotent methods. @default false */
  retryNonIdempotent?: boolean;
}

/** Why a failed try is not retried. */
export type RetryStopReason =
  | "not_retryable"
  | "non_idempotent"
  | "attempts_exhausted"
  | "deadline"
  | "budget_exhausted";

/** The answer of {@linkcode RetryPolicy.decide}. */
export type RetryDecision =
  | { readonly retry: true; readonly delayMs: number }
  | { readonly retry: false; readonly reason: RetryStopReason };

const _STOP: Record<RetryStopReason, RetryDecision> = {
  not_retryable: Object.freeze({ retry: false, reason: "not_retryable" }),
  non_idempotent: Object.freeze({ retry: false, reason: "non_idempotent" }),
  attempts_exhausted: Object.freeze({ retry: false, reason: "attempts_exhausted" }),
  deadline: Object.freeze({ retry: false, reason: "deadline" }),
  budget_exhausted: Object.freeze({ retry: false, reason: "budget_exhausted" }),
};

/** Options of {@linkcode RetryBudget}. */
export interface RetryBudgetOptions {
  /** Clock in ms. */
  now: () => number;
  /** Retries allowed as a % of requests in the window. */
  percent: number;
  /** Retries allowed per second of window regardless of traffic. */
  minPerSecond: number;
  /** Window length. */
  windowMs: number;
}

/** A sliding-window budget: deposits per request, withdrawals per retry. */
export class RetryBudget {
  private readonly _now: () => number;
  private readonly _ratio: number;
  private readonly _reserve: number;
  private readonly _bucketMs: number;
  private readonly _requests = new Float64Array(RETRY_BUDGET_BUCKETS);
  private readonly _retries = new Float64Array(RETRY_BUDGET_BUCKETS);
  private _bucket = -1;
  private _requestSum = 0;
  private _retrySum = 0;

  /** Creates an empty budget. */
  constructor(opts: RetryBudgetOptions) {
    this._now = opts.now;
    this._ratio = Math.max(0, opts.percent) / 100;
    this._reserve = Math.max(0, opts.minPerSecond) * (opts.windowMs / 1000);
    this._bucketMs = Math.max(1, opts.windowMs / RETRY_BUDGET_BUCKETS);
  }

  /** Records one original request (not a retry). */
  recordRequest(): void {
    this._requests[this._advance()]!++;
    this._requestSum++;
  }

  /** Takes one retry from the budget if it has room; false means do not retry. */
  tryWithdraw(): boolean {
    const b = this._advance();
    if (this._retrySum + 1 > this._requestSum * this._ratio + this._reserve) return false;
    this._retries[b]!++;
    this._retrySum++;
    return true;
  }

  /** Retries the budget would allow now. */
  available(): number {
    this._advance();
    return Math.max(0, Math.floor(this._requestSum * this._ratio + this._reserve - this._retrySum));
  }

  private _advance(): number {
    // A clock that steps back is held at the newest bucket rather than corrupting the sums.
    const idx = Math.max(this._bucket, Math.floor(this._now() / this._bucketMs));
    if (idx !== this._bucket) {
      // Clear the buckets that slid out of the window since the last call (at most all of them).
      const steps = this._bucket < 0
        ? RETRY_BUDGET_BUCKETS
        : Math.min(idx - this._bucket, RETRY_BUDGET_BUCKETS);
      for (let k = 1; k <= steps; k++) {
        const i = (((this._bucket + k) % RETRY_BUDGET_BUCKETS) + RETRY_BUDGET_BUCKETS) %
          RETRY_BUDGET_BUCKETS;
        this._requestSum -= this._requests[i]!;
        this._retrySum -= this._retries[i]!;
        this._requests[i] = 0;
        this._retries[i] = 0;
      }
      this._bucket = idx;
    }
    return ((idx % RETRY_BUDGET_BUCKETS) + RETRY_BUDGET_BUCKETS) % RETRY_BUDGET_BUCKETS;
  }
}

/** Per-destination retry policy: decides, after each failed try, whether and when to retry. */
export class RetryPolicy {
  /** Total tries including the first. */
  readonly attempts: number;
  /** The shared budget of this destination. */
  readonly budget: RetryBudget;
  private readonly _random: () => number;
  private readonly _baseMs: number;
  private readonly _maxMs: number;
  private readonly _nonIdempotent: boolean;
  private readonly _on5xx: boolean;
  private readonly _onGateway: boolean;
  private readonly _onReset: boolean;
  private readonly _onConnect: boolean;
  private readonly _on4xx: boolean;

  /** Creates the policy; `random` (uniform in [0, 1)) drives the jitter. */
  constructor(opts: RetryOptions, deps: { now: () => number; random: () => number }) {
    this.attempts = Math.max(1, Math.min(MAX_RETRY_ATTEMPTS, Math.floor(opts.attempts)));
    const on = new Set(opts.on ?? RETRY_DEFAULTS.on);
    this._on5xx = on.has("5xx");
    this._onGateway = on.has("gateway_error");
    this._onReset = on.has("reset");
    this._onConnect = on.has("connect_failure");
    this._on4xx = on.has("retriable_4xx");
    this._baseMs = Math.max(0, opts.backoffBaseMs ?? RETRY_DEFAULTS.backoffBaseMs);
    this._maxMs = Math.max(this._baseMs, opts.backoffMaxMs ?? RETRY_DEFAULTS.backoffMaxMs);
    this._nonIdempotent = opts.retryNonIdempotent ?? false;
    this._random = deps.random;
    this.budget = new RetryBudget({
      now: deps.now,
      percent: opts.budgetPercent ?? RETRY_DEFAULTS.budgetPercent,
      minPerSecond: opts.minRetriesPerSecond ?? RETRY_DEFAULTS.minRetriesPerSecond,
      windowMs: opts.budgetWindowMs ?? RETRY_DEFAULTS.budgetWindowMs,
    });
  }

  /** Records an original request in the budget; call once per request, not per try. */
  recordRequest(): void {
    this.budget.recordRequest();
  }

  /** Whether `method` may be retried under this policy. */
  retryableMethod(method: string): boolean {
    return this._nonIdempotent || IDEMPOTENT_METHODS.has(method);
  }

  /** Whether the `on` conditions cover this outcome. */
  retryableOutcome(o: Outcome): boolean {
    switch (o.kind) {
      case "connect_failure":
        return this._onConnect;
      case "reset":
        return this._onReset;
      case "timeout":
        return this._on5xx || this._onGateway;
      case "response": {
        const s = o.status;
        if (s >= 500 && s <= 599) {
          return this._on5xx || (this._onGateway && s >= 502 && s <= 504);
        }
        return this._on4xx && s === 409;
      }
    }
  }

  /** Full-jitter backoff before retry number `retry` (1 = first retry): uniform in [0, ceiling). */
  backoffMs(retry: number): number {
    const ceiling = Math.min(this._maxMs, this._baseMs * 2 ** Math.max(0, retry - 1));
    return this._random() * ceiling;
  }

  /**
   * Decides for an opaque TCP connection after try number `triesSoFar`: only a failed connect
   * is retried (nothing reached the endpoint, and no byte of the stream was read), whatever
   * the `on` conditions say; attempts and the budget still bound it.
   */
  decideConnect(outcome: Outcome, triesSoFar: number): RetryDecision {
    if (outcome.kind !== "connect_failure") return _STOP.not_retryable;
    if (triesSoFar >= this.attempts) return _STOP.attempts_exhausted;
    if (!this.budget.tryWithdraw()) return _STOP.budget_exhausted;
    return { retry: true, delayMs: this.backoffMs(triesSoFar) };
  }

  /**
   * Decides after try number `triesSoFar` (1 after the first) ended with `outcome`.
   * `remainingMs` is what is left of the overall timeout; a retry that could not even start
   * before it runs out is not taken. A positive decision has already withdrawn from the budget.
   */
  decide(
    method: string,
    outcome: Outcome,
    triesSoFar: number,
    remainingMs = Infinity,
  ): RetryDecision {
    if (!this.retryableOutcome(outcome)) return _STOP.not_retryable;
    // Nothing of a call that never reached the endpoint can have taken effect, so a failed
    // connect (or a mux stream the callee refused unread) is retried whatever the method.
    if (outcome.kind !== "connect_failure" && !this.retryableMethod(method)) {
      return _STOP.non_idempotent;
    }
    if (triesSoFar >= this.attempts) return _STOP.attempts_exhausted;
    const delayMs = this.backoffMs(triesSoFar);
    if (delayMs >= remainingMs) return _STOP.deadline;
    if (!this.budget.tryWithdraw()) return _STOP.budget_exhausted;
    return { retry: true, delayMs };
  }
}
