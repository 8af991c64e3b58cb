/**
 * Weighted random sampling over a pool, shared by the random-choice algorithms.
 * @module
 */
import type { EndpointState } from "./types.ts";

/** Rejection-sampling tries before falling back to a linear scan when many are excluded. */
export const MAX_SAMPLE_TRIES = 8;

/** A pool with prefix sums of weights, so one weighted draw is a binary search. */
export class WeightedPool {
  states: readonly EndpointState[] = [];
  private _cumulative = new Float64Array(0);
  private _total = 0;
  private readonly _random: () => number;

  /** Creates an empty pool drawing from `random` (uniform in [0, 1)). */
  constructor(random: () => number) {
    this._random = random;
  }

  /** Replaces the pool's members. */
  rebuild(states: readonly EndpointState[]): void {
    this.states = states;
    this._cumulative = new Float64Array(states.length);
    let total = 0;
    for (let i = 0; i < states.length; i++) {
      total += states[i]!.endpoint.weight;
      this._cumulative[i] = total;
    }
    this._total = total;
  }

  /** Index drawn with probability proportional to weight (or uniformly), skipping `exclude`; -1 if none. */
  draw(exclude: ReadonlySet<string> | undefined, weighted: boolean): number {
    const n = this.states.length;
    if (n === 0) return -1;
    for (let t = 0; t < MAX_SAMPLE_TRIES; t++) {
      const i = weighted ? this._weightedIndex() : Math.floor(this._random() * n);
      if (exclude === undefined || !exclude.has(this.states[i]!.endpoint.key)) return i;
    }
    // Most of the pool is excluded: a scan from a random start still spreads the load.
    const start = Math.floor(this._random() * n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (!exclude?.has(this.states[i]!.endpoint.key)) return i;
    }
    return -1;
  }

  /** Like {@linkcode draw} but never returns `first`; -1 when no other index is left. */
  drawOther(first: number, exclude: ReadonlySet<string> | undefined, weighted: boolean): number {
    const n = this.states.length;
    if (n < 2) return -1;
    for (let t = 0; t < MAX_SAMPLE_TRIES; t++) {
      const i = weighted
        ? this._weightedIndex()
        : (first + 1 + Math.floor(this._random() * (n - 1))) % n;
      if (i === first) continue;
      if (exclude === undefined || !exclude.has(this.states[i]!.endpoint.key)) return i;
    }
    const start = Math.floor(this._random() * n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (i !== first && (exclude === undefined || !exclude.has(this.states[i]!.endpoint.key))) {
        return i;
      }
    }
    return -1;
  }

  private _weightedIndex(): number {
    const c = this._cumulative;
    const target = this._random() * this._total;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
