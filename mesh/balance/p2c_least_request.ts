/**
 * Power of two choices on active requests, weight-aware.
 *
 * Two candidates are drawn with probability proportional to weight; the one with fewer
 * active requests per unit of weight wins, ties going to the first draw. With no load this
 * gives exactly the weight shares; under load it steers away from busy endpoints without
 * the herding that "always pick the least loaded" causes when many proxies share stale views.
 * @module
 */
import { WeightedPool } from "./_sample.ts";
import type { EndpointState, Picker } from "./types.ts";

/** P2C least-request over one pool. */
export class P2cLeastRequestPicker implements Picker {
  private readonly _pool: WeightedPool;

  /** Creates a picker drawing candidates from `random`. */
  constructor(random: () => number) {
    this._pool = new WeightedPool(random);
  }

  /** Replaces the pool. */
  rebuild(states: readonly EndpointState[]): void {
    this._pool.rebuild(states);
  }

  /** Picks the less loaded of two weighted draws. */
  pick(exclude: ReadonlySet<string> | undefined): EndpointState | null {
    const pool = this._pool;
    const a = pool.draw(exclude, true);
    if (a < 0) return null;
    const b = pool.drawOther(a, exclude, true);
    const sa = pool.states[a]!;
    if (b < 0) return sa;
    const sb = pool.states[b]!;
    // active_b / w_b < active_a / w_a, cross-multiplied to avoid division.
    return sb.active * sa.endpoint.weight < sa.active * sb.endpoint.weight ? sb : sa;
  }
}
