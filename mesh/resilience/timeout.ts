/**
 * Deadline arithmetic for the overall request timeout and the per-try timeout.
 *
 * A try may run for `min(per_try_timeout, time left of the overall timeout)`; when it times
 * out, {@linkcode Deadline.timeoutError} says which of the two limits was hit, so the
 * response (504) and the log name the right one.
 * @module
 */

/** Which limit a timeout hit. */
export type TimeoutKind = "overall" | "per_try";

/** Formats ms the way config writes durations: `2s`, `500ms`, `1.5s`, `2m`. */
export function formatDurationMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${Math.round(ms) / 1000}s`;
  return `${Math.round(ms)}ms`;
}

/** A request or try ran past its time limit: SPEC's 504. */
export class TimeoutError extends Error {
  override readonly name = "TimeoutError";
  /** HTTP status the proxy answers with. */
  readonly status = 504;
  /** Creates the error; the message names the limit, e.g. "request timed out after 2s". */
  constructor(readonly kind: TimeoutKind, readonly limitMs: number) {
    super(
      kind === "overall"
        ? `request timed out after ${formatDurationMs(limitMs)} (timeout)`
        : `try timed out after ${formatDurationMs(limitMs)} (per_try_timeout)`,
    );
  }
}

/** The time limits of one request, started at `startMs`. */
export class Deadline {
  /** Absolute end of the request; Infinity without an overall timeout. */
  readonly endMs: number;

  /**
   * Creates the deadline. `overallMs` and `perTryMs` of 0 or less (or undefined) mean no limit.
   */
  constructor(
    readonly startMs: number,
    readonly overallMs?: number,
    readonly perTryMs?: number,
  ) {
    this.endMs = overallMs !== undefined && overallMs > 0 ? startMs + overallMs : Infinity;
  }

  /** Time left of the overall timeout at `nowMs` (0 once expired, Infinity without a limit). */
  remainingMs(nowMs: number): number {
    return Math.max(0, this.endMs - nowMs);
  }

  /** Whether the overall timeout has passed. */
  expired(nowMs: number): boolean {
    return nowMs >= this.endMs;
  }

  /** How long a try started at `nowMs` may run (Infinity when neither limit applies). */
  tryTimeoutMs(nowMs: number): number {
    const remaining = this.remainingMs(nowMs);
    const perTry = this.perTryMs !== undefined && this.perTryMs > 0 ? this.perTryMs : Infinity;
    return Math.min(perTry, remaining);
  }

  /** The error for a try started at `tryStartMs` that timed out: whichever limit bound it. */
  timeoutError(tryStartMs: number): TimeoutError {
    const perTry = this.perTryMs !== undefined && this.perTryMs > 0 ? this.perTryMs : Infinity;
    if (perTry < this.remainingMs(tryStartMs)) return new TimeoutError("per_try", perTry);
    return new TimeoutError("overall", this.overallMs ?? 0);
  }
}
