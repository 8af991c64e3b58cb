/**
 * Consistent hashing on a request value (ketama-like), for session affinity.
 *
 * Each endpoint owns `round(weight * vnodesPerWeight)` points on a 32-bit ring, named by its
 * key, so a point's position never depends on the other endpoints: adding an endpoint only
 * inserts its points and moves only the keys that now land on them (about 1/(n+1) of keys).
 * When the ring would exceed `maxRingSize`, points per unit of weight shrink for all endpoints.
 * @module
 */
import { WeightedPool } from "./_sample.ts";
import type { EndpointState, Picker } from "./types.ts";

/** Default ring points per unit of weight (ketama uses 160 per server). */
export const DEFAULT_RING_VNODES_PER_WEIGHT = 160;
/** Default upper bound on ring points, bounding rebuild time and memory. */
export const DEFAULT_RING_MAX_SIZE = 65_536;

/** A fast, stable 32-bit string hash: FNV-1a over UTF-16 code units with murmur3's finalizer. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Options for {@linkcode RingHashPicker}. */
export interface RingHashOptions {
  /** Ring points per unit of weight. @default 160 */
  vnodesPerWeight?: number;
  /** Most ring points in total. @default 65536 */
  maxRingSize?: number;
}

/** Consistent-hash ring over one pool. */
export class RingHashPicker implements Picker {
  private _states: readonly EndpointState[] = [];
  private _hashes = new Uint32Array(0);
  private _owners = new Uint32Array(0);
  private readonly _fallback: WeightedPool;
  private readonly _vnodesPerWeight: number;
  private readonly _maxRingSize: number;

  /** Creates a picker; `random` serves requests that carry no hash key. */
  constructor(random: () => number, opts: RingHashOptions = {}) {
    this._fallback = new WeightedPool(random);
    this._vnodesPerWeight = opts.vnodesPerWeight ?? DEFAULT_RING_VNODES_PER_WEIGHT;
    this._maxRingSize = opts.maxRingSize ?? DEFAULT_RING_MAX_SIZE;
  }

  /** Number of points on the ring (for tests and the admin endpoint). */
  get ringSize(): number {
    return this._hashes.length;
  }

  /** Rebuilds the ring. */
  rebuild(states: readonly EndpointState[]): void {
    this._states = states;
    this._fallback.rebuild(states);
    let totalWeight = 0;
    for (const s of states) totalWeight += s.endpoint.weight;
    const perWeight = totalWeight * this._vnodesPerWeight > this._maxRingSize
      ? this._maxRingSize / totalWeight
      : this._vnodesPerWeight;
    const points: { hash: number; owner: number }[] = [];
    for (let i = 0; i < states.length; i++) {
      const s = states[i]!;
      const count = Math.max(1, Math.round(s.endpoint.weight * perWeight));
      for (let j = 0; j < count; j++) {
        points.push({ hash: hashString(`${s.endpoint.key}#${j}`), owner: i });
      }
    }
    // Ties (rare) are broken by key so the ring does not depend on the catalog's order.
    points.sort((x, y) =>
      x.hash - y.hash ||
      (states[x.owner]!.endpoint.key < states[y.owner]!.endpoint.key ? -1 : 1)
    );
    this._hashes = new Uint32Array(points.length);
    this._owners = new Uint32Array(points.length);
    for (let k = 0; k < points.length; k++) {
      this._hashes[k] = points[k]!.hash;
      this._owners[k] = points[k]!.owner;
    }
  }

  /** Picks the owner of the first point at or after the key's hash, walking on past exclusions. */
  pick(
    exclude: ReadonlySet<string> | undefined,
    hashKey: string | undefined,
  ): EndpointState | null {
    if (hashKey === undefined) {
      // No affinity requested: plain weighted random keeps the load shares right.
      const i = this._fallback.draw(exclude, true);
      return i < 0 ? null : this._states[i]!;
    }
    const hashes = this._hashes;
    const n = hashes.length;
    if (n === 0) return null;
    if (
      exclude !== undefined && exclude.size >= this._states.length &&
      _allExcluded(this._states, exclude)
    ) {
      return null; // spares a walk over the whole ring
    }
    const h = hashString(hashKey);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    for (let k = 0; k < n; k++) {
      const s = this._states[this._owners[(lo + k) % n]!]!;
      if (exclude === undefined || !exclude.has(s.endpoint.key)) return s;
    }
    return null;
  }
}

function _allExcluded(states: readonly EndpointState[], exclude: ReadonlySet<string>): boolean {
  for (const s of states) if (!exclude.has(s.endpoint.key)) return false;
  return true;
}
