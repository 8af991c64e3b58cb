/**
 * Passive outlier detection: endpoints that fail several times in a row are ejected from
 * load balancing for a while, longer each time they are ejected again.
 *
 * Counting (Envoy's default, non-split mode): a 5xx response, a reset, a per-try timeout and
 * a connect failure all count towards `consecutive5xx`; connect failures alone also count
 * towards `consecutiveConnectFailures`. A response below 500 resets both counters.
 *
 * An ejection lasts `baseEjectionMs * timesEjected`, capped at `maxEjectionMs`; it ends at
 * the first `tick()` after it expires (the proxy calls `tick()` every `intervalMs`). Each
 * tick in which an endpoint is not ejected lowers its `timesEjected` by one, so an endpoint
 * that recovered for good returns to short ejections.
 *
 * An endpoint ejected only for failed connects and broken connections (resets: a host cut
 * off, a process killed) comes back early when the proxy's probe connects to it again
 * ({@linkcode OutlierDetector.restoreReachable}): a host cut off and healed serves again within
 * a probe interval instead of after its whole ejection. A timeout or a 5xx answer in the run
 * happens on an open connection, so a probe's connect proves nothing about it (a frozen app's
 * kernel still accepts connections): those ejections run their whole time.
 *
 * At most `maxEjectionPercent` of the tracked endpoints are ejected at once, rounded down
 * but at least one, so small clusters still shed a broken endpoint; and never the last
 * endpoint left, because sending traffic to a failing endpoint beats answering 503 for all
 * of it. `maxEjectionPercent: 0` disables ejection. An ejection refused by these limits is
 * reported as an `overflow` event, as Envoy's `ejections_overflow`.
 * @module
 */
import type { Outcome } from "./outcome.ts";

/** Defaults of the outlier options. */
export const OUTLIER_DEFAULTS = Object.freeze({
  consecutive5xx: 5,
  consecutiveConnectFailures: 5,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
});

/** Options of {@linkcode OutlierDetector}, from Policy `outlier_detection` in ms. */
export interface OutlierOptions {
  /** Consecutive failures that eject; 0 disables. @default 5 */
  consecutive5xx?: number;
  /** Consecutive connect failures that eject; 0 disables. @default 5 */
  consecutiveConnectFailures?: number;
  /** How often the proxy calls `tick()`. @default 10000 */
  intervalMs?: number;
  /** First ejection's length; later ones are multiples. @default 30000 */
  baseEjectionMs?: number;
  /** Longest ejection. @default max(300000, baseEjectionMs) */
  maxEjectionMs?: number;
  /** Most endpoints ejected at once, in % of tracked ones. @default 10 */
  maxEjectionPercent?: number;
}

/** What tripped an ejection. */
export type EjectionReason = "consecutive_5xx" | "consecutive_connect_failure";

/** What the detector tells its listener (balancer, metrics, log). */
export type OutlierEvent =
  | {
    readonly kind: "ejected";
    readonly key: string;
    readonly reason: EjectionReason;
    readonly durationMs: number;
    readonly timesEjected: number;
  }
  | { readonly kind: "restored"; readonly key: string }
  | { readonly kind: "overflow"; readonly key: string; readonly reason: EjectionReason };

class _OutlierState {
  consecutive5xx = 0;
  consecutiveConnect = 0;
  timesEjected = 0;
  ejectedUntilMs = -1;
  /** The current run of failures included one on an open connection (5xx, timeout). */
  connected = false;
  /** Ejected for failed connects and resets only (a probe may restore it). */
  unreachable = false;
}

/** Tracks failures per endpoint key and decides ejections. */
export class OutlierDetector {
  /** How often `tick()` should run. */
  readonly intervalMs: number;
  private readonly _now: () => number;
  private readonly _onEvent: (e: OutlierEvent) => void;
  private readonly _threshold5xx: number;
  private readonly _thresholdConnect: number;
  private readonly _baseMs: number;
  private readonly _maxMs: number;
  private readonly _maxPercent: number;
  private readonly _states = new Map<string, _OutlierState>();
  private _ejected = 0;

  /** Creates a detector; `onEvent` hears every ejection, restoration and overflow. */
  constructor(
    opts: OutlierOptions,
    deps: { now: () => number; onEvent?: (e: OutlierEvent) => void },
  ) {
    this._now = deps.now;
    this._onEvent = deps.onEvent ?? (() => {});
    this._threshold5xx = opts.consecutive5xx ?? OUTLIER_DEFAULTS.consecutive5xx;
    this._thresholdConnect = opts.consecutiveConnectFailures ??
      OUTLIER_DEFAULTS.consecutiveConnectFailures;
    this.intervalMs = opts.intervalMs ?? OUTLIER_DEFAULTS.intervalMs;
    this._baseMs = opts.baseEjectionMs ?? OUTLIER_DEFAULTS.baseEjectionMs;
    this._maxMs = opts.maxEjectionMs ?? Math.max(OUTLIER_DEFAULTS.maxEjectionMs, this._baseMs);
    this._maxPercent = opts.maxEjectionPercent ?? OUTLIER_DEFAULTS.maxEjectionPercent;
  }

  /** Replaces the tracked endpoints; state of keys that stay is kept. */
  setEndpoints(keys: Iterable<string>): void {
    const next = new Map<string, _OutlierState>();
    let ejected = 0;
    for (const k of keys) {
      const s = this._states.get(k) ?? new _OutlierState();
      if (s.ejectedUntilMs >= 0) ejected++;
      next.set(k, s);
    }
    this._states.clear();
    for (const [k, s] of next) this._states.set(k, s);
    this._ejected = ejected;
  }

  /** Records the outcome of one try against `key`; may eject it. */
  report(key: string, outcome: Outcome): void {
    const s = this._states.get(key);
    if (s === undefined) return;
    switch (outcome.kind) {
      case "response":
        if (outcome.status < 500) {
          s.consecutive5xx = 0;
          s.consecutiveConnect = 0;
          s.connected = false;
          return;
        }
        s.consecutiveConnect = 0;
        s.consecutive5xx++;
        s.connected = true;
        break;
      case "connect_failure":
        s.consecutiveConnect++;
        s.consecutive5xx++;
        break;
      case "reset":
        s.consecutiveConnect = 0;
        s.consecutive5xx++;
        break;
      case "timeout":
        s.consecutiveConnect = 0;
        s.consecutive5xx++;
        s.connected = true;
        break;
    }
    if (s.ejectedUntilMs >= 0) return; // late results of requests sent before the ejection
    if (this._thresholdConnect > 0 && s.consecutiveConnect >= this._thresholdConnect) {
      this._eject(key, s, "consecutive_connect_failure");
    } else if (this._threshold5xx > 0 && s.consecutive5xx >= this._threshold5xx) {
      this._eject(key, s, "consecutive_5xx");
    }
  }

  /** Ends expired ejections and relaxes multipliers; call every `intervalMs`. */
  tick(): void {
    const now = this._now();
    for (const [key, s] of this._states) {
      if (s.ejectedUntilMs >= 0) {
        if (now >= s.ejectedUntilMs) {
          s.ejectedUntilMs = -1;
          this._ejected--;
          this._onEvent({ kind: "restored", key });
        }
      } else if (s.timesEjected > 0) {
        s.timesEjected--;
      }
    }
  }

  /** Keys ejected for failed connects and resets only: what a successful probe may restore. */
  ejectedUnreachable(): string[] {
    const out: string[] = [];
    for (const [k, s] of this._states) if (s.ejectedUntilMs >= 0 && s.unreachable) out.push(k);
    return out;
  }

  /**
   * Ends the ejection of an endpoint ejected for failed connects and resets, because a
   * connection to it succeeded again. One whose run had a 5xx answer or a timeout waits out its
   * time: a connection proves nothing about them.
   */
  restoreReachable(key: string): boolean {
    const s = this._states.get(key);
    if (s === undefined || s.ejectedUntilMs < 0 || !s.unreachable) return false;
    s.ejectedUntilMs = -1;
    this._ejected--;
    this._onEvent({ kind: "restored", key });
    return true;
  }

  /** Whether `key` is ejected now. */
  isEjected(key: string): boolean {
    const s = this._states.get(key);
    return s !== undefined && s.ejectedUntilMs >= 0;
  }

  /** Number of endpoints ejected now. */
  ejectedCount(): number {
    return this._ejected;
  }

  /** How many of the tracked endpoints may be ejected at once (see the module doc). */
  maxEjectable(): number {
    const n = this._states.size;
    if (this._maxPercent <= 0 || n <= 1) return 0;
    return Math.min(n - 1, Math.max(1, Math.floor((n * this._maxPercent) / 100)));
  }

  private _eject(key: string, s: _OutlierState, reason: EjectionReason): void {
    // Start counting afresh either way, so a refused ejection is retried after another run.
    s.consecutive5xx = 0;
    s.consecutiveConnect = 0;
    const unreachable = !s.connected;
    s.connected = false;
    if (this._ejected >= this.maxEjectable()) {
      this._onEvent({ kind: "overflow", key, reason });
      return;
    }
    s.timesEjected++;
    const durationMs = Math.min(this._maxMs, this._baseMs * s.timesEjected);
    s.ejectedUntilMs = this._now() + durationMs;
    s.unreachable = unreachable;
    this._ejected++;
    this._onEvent({ kind: "ejected", key, reason, durationMs, timesEjected: s.timesEjected });
  }
}
