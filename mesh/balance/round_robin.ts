/**
 * Smooth weighted round robin (nginx): spreads heavy endpoints' turns evenly instead of in bursts.
 * @module
 */
import type { EndpointState, Picker } from "./types.ts";

/** Smooth weighted round robin over one pool. */
export class RoundRobinPicker implements Picker {
  private _states: readonly EndpointState[] = [];
  private _current = new Float64Array(0);

  /** Replaces the pool; turn state restarts, as in nginx after a reload. */
  rebuild(states: readonly EndpointState[]): void {
    this._states = states;
    this._current = new Float64Array(states.length);
  }

  /** Picks the endpoint with the highest running credit, then charges it the round's total. */
  pick(exclude: ReadonlySet<string> | undefined): EndpointState | null {
    const states = this._states;
    const cur = this._current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < states.length; i++) {
      const s = states[i]!;
      if (exclude !== undefined && exclude.has(s.endpoint.key)) continue;
      const w = s.endpoint.weight;
      cur[i]! += w;
      total += w;
      if (best < 0 || cur[i]! > cur[best]!) best = i;
    }
    if (best < 0) return null;
    cur[best]! -= total;
    return states[best]!;
  }
}
