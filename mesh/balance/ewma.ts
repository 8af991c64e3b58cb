/**
 * Peak-EWMA latency balancing (Finagle / Linkerd): P2C on `latency * (active + 1) / weight`.
 *
 * The estimate jumps up to any slower observation at once (peak) and decays towards faster
 * ones with time constant `decayMs`. When no request completes it keeps decaying towards zero,
 * so an endpoint that was slow once is probed again after a while instead of starved forever.
 * A new endpoint starts at `penaltyMs`, so it is probed gently rather than flooded before its
 * latency is known; failures count as at least `penaltyMs`, so an endpoint that fails fast
 * does not look fast (the "black hole" effect).
 * @module
 */
import { WeightedPool } from "./_sample.ts";
import type { EndpointState, Picker } from "./types.ts";

/** Default decay time constant of the estimate (Linkerd's default). */
export const DEFAULT_EWMA_DECAY_MS = 10_000;
/** Default initial estimate of a new endpoint, and the floor recorded for a failure. */
export const DEFAULT_EWMA_PENALTY_MS = 1_000;

/** The estimate as of `nowMs`: decayed towards zero since it was last written. */
export function decayedEwmaMs(s: EndpointState, nowMs: number, decayMs: number): number {
  const elapsed = nowMs - s.ewmaStampMs;
  return elapsed > 0 ? s.ewmaMs * Math.exp(-elapsed / decayMs) : s.ewmaMs;
}

/** Folds one observed latency into the peak-EWMA estimate. */
export function observeEwma(
  s: EndpointState,
  nowMs: number,
  latencyMs: number,
  decayMs: number,
): void {
  if (!s.ewmaObserved) {
    // The penalty was a guess; the first real sample replaces it.
    s.ewmaObserved = true;
    s.ewmaStampMs = nowMs;
    s.ewmaMs = latencyMs;
    return;
  }
  const elapsed = Math.max(0, nowMs - s.ewmaStampMs);
  const decay = Math.exp(-elapsed / decayMs);
  const prior = s.ewmaMs * decay;
  s.ewmaMs = latencyMs >= prior ? latencyMs : prior * decay + latencyMs * (1 - decay);
  s.ewmaStampMs = nowMs;
}

/** Peak-EWMA cost of sending one more request to `s`. */
export function ewmaCost(s: EndpointState, nowMs: number, decayMs: number): number {
  return (decayedEwmaMs(s, nowMs, decayMs) * (s.active + 1)) / s.endpoint.weight;
}

/** P2C over peak-EWMA cost for one pool. */
export class EwmaPicker implements Picker {
  private readonly _pool: WeightedPool;
  private readonly _now: () => number;
  private readonly _decayMs: number;

  /** Creates a picker; candidates are drawn uniformly since the cost already divides by weight. */
  constructor(now: () => number, random: () => number, decayMs: number) {
    this._pool = new WeightedPool(random);
    this._now = now;
    this._decayMs = decayMs;
  }

  /** Replaces the pool. */
  rebuild(states: readonly EndpointState[]): void {
    this._pool.rebuild(states);
  }

  /** Picks the cheaper of two uniform draws. */
  pick(exclude: ReadonlySet<string> | undefined): EndpointState | null {
    const pool = this._pool;
    const a = pool.draw(exclude, false);
    if (a < 0) return null;
    const b = pool.drawOther(a, exclude, false);
    const sa = pool.states[a]!;
    if (b < 0) return sa;
    const sb = pool.states[b]!;
    const now = this._now();
    return ewmaCost(sb, now, this._decayMs) < ewmaCost(sa, now, this._decayMs) ? sb : sa;
  }
}
