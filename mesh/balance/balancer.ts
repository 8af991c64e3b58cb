/**
 * The balancer a proxy keeps per destination: locality tiers around one algorithm.
 *
 * Endpoints that are not `passing`, are ejected by outlier detection or have weight `<= 0`
 * get no traffic. With a local zone, the local tier gets all traffic while at least
 * `failoverBelowHealthyPercent` of the local zone's endpoints are eligible; below that, the
 * local tier's share shrinks in proportion (`healthy% / threshold`) and the rest spills to
 * the other zones, so a zone losing a few endpoints does not overload the survivors.
 * When a tier has nothing left to offer (all excluded by the caller), the other tier is used.
 * @module
 */
import { DEFAULT_EWMA_DECAY_MS, DEFAULT_EWMA_PENALTY_MS, EwmaPicker, observeEwma } from "./ewma.ts";
import { P2cLeastRequestPicker } from "./p2c_least_request.ts";
import { hashString, RingHashPicker } from "./ring_hash.ts";
import { RoundRobinPicker } from "./round_robin.ts";
import { type BalancerPolicy, type Endpoint, EndpointState, type Picker } from "./types.ts";

/** Default of `locality.failover_below_healthy_percent`. */
export const DEFAULT_FAILOVER_BELOW_HEALTHY_PERCENT = 70;

/** Options for {@linkcode createBalancer}. */
export interface BalancerOptions {
  /** Clock in ms. */
  now: () => number;
  /** Uniform random in [0, 1); inject a seeded one in tests. */
  random: () => number;
  /** This proxy's zone; without it there is a single tier. */
  localZone?: string;
  /** `locality.prefer_zone`. @default true */
  preferZone?: boolean;
  /** `locality.failover_below_healthy_percent`. @default 70 */
  failoverBelowHealthyPercent?: number;
  /** Peak-EWMA decay time constant. @default 10000 */
  ewmaDecayMs?: number;
  /** Peak-EWMA estimate of a new endpoint, and floor for failures. @default 1000 */
  ewmaPenaltyMs?: number;
  /** Ring points per unit of weight for `ring_hash`. @default 160 */
  ringVnodesPerWeight?: number;
  /** Most ring points for `ring_hash`. @default 65536 */
  ringMaxSize?: number;
}

/** A snapshot of one endpoint's balancer state, for the admin `/endpoints` page. */
export interface EndpointStats {
  /** The endpoint as last updated. */
  endpoint: Endpoint;
  /** Requests in flight. */
  active: number;
  /** Current peak-EWMA latency estimate in ms (meaningful for `ewma`). */
  ewmaMs: number;
  /** Whether outlier detection has ejected it. */
  ejected: boolean;
  /** Whether it can receive traffic now. */
  eligible: boolean;
}

/** Picks endpoints for one destination and learns from request outcomes. */
export interface Balancer {
  /** The algorithm in use. */
  readonly policy: BalancerPolicy;
  /** Chooses an endpoint, skipping `exclude` (endpoints already tried); null when none is left. */
  pick(exclude?: ReadonlySet<string>, hashKey?: string): Endpoint | null;
  /** Records that a request to `ep` started. */
  onStart(ep: Endpoint): void;
  /** Records that a request to `ep` ended after `latencyMs`; `ok` is false for failures. */
  onEnd(ep: Endpoint, latencyMs: number, ok: boolean): void;
  /** Replaces the endpoint set; state of keys that stay is kept. Duplicate keys: first wins. */
  update(endpoints: readonly Endpoint[]): void;
  /** Marks an endpoint ejected (or restored) by outlier detection. */
  setEjected(key: string, ejected: boolean): void;
  /** Number of endpoints that can receive traffic. */
  eligibleCount(): number;
  /** Probability that a pick goes to the local tier (1 without locality). */
  localShare(): number;
  /** Per-endpoint state, in update order. */
  stats(): EndpointStats[];
}

/** The error a forwarder raises when {@linkcode Balancer.pick} returns null: SPEC's 503. */
export class NoHealthyEndpointError extends Error {
  override readonly name = "NoHealthyEndpointError";
  /** HTTP status the proxy answers with. */
  readonly status = 503;
  /** Creates the error for `destination`, saying how many endpoints were known and tried. */
  constructor(readonly destination: string, readonly known: number, readonly tried: number) {
    super(
      `no healthy endpoint for ${destination}: ${known} known, ${tried} already tried, none eligible`,
    );
  }
}

/** Creates a balancer for `endpoints` using `policy`. */
export function createBalancer(
  policy: BalancerPolicy,
  endpoints: readonly Endpoint[],
  opts: BalancerOptions,
): Balancer {
  const b = new _LocalityBalancer(policy, opts);
  b.update(endpoints);
  return b;
}

function _makePicker(policy: BalancerPolicy, opts: BalancerOptions): Picker {
  switch (policy) {
    case "round_robin":
      return new RoundRobinPicker();
    case "p2c_least_request":
      return new P2cLeastRequestPicker(opts.random);
    case "ewma":
      return new EwmaPicker(opts.now, opts.random, opts.ewmaDecayMs ?? DEFAULT_EWMA_DECAY_MS);
    case "ring_hash":
      return new RingHashPicker(opts.random, {
        vnodesPerWeight: opts.ringVnodesPerWeight,
        maxRingSize: opts.ringMaxSize,
      });
  }
}

class _LocalityBalancer implements Balancer {
  readonly policy: BalancerPolicy;
  private readonly _opts: BalancerOptions;
  private readonly _decayMs: number;
  private readonly _penaltyMs: number;
  private readonly _threshold: number;
  private readonly _zoned: boolean;
  private _states = new Map<string, EndpointState>();
  private readonly _local: Picker;
  private readonly _remote: Picker;
  private _localShare = 1;
  private _eligible = 0;

  constructor(policy: BalancerPolicy, opts: BalancerOptions) {
    this.policy = policy;
    this._opts = opts;
    this._decayMs = opts.ewmaDecayMs ?? DEFAULT_EWMA_DECAY_MS;
    this._penaltyMs = opts.ewmaPenaltyMs ?? DEFAULT_EWMA_PENALTY_MS;
    this._threshold = opts.failoverBelowHealthyPercent ?? DEFAULT_FAILOVER_BELOW_HEALTHY_PERCENT;
    this._zoned = (opts.preferZone ?? true) && opts.localZone !== undefined &&
      opts.localZone !== "";
    this._local = _makePicker(policy, opts);
    this._remote = _makePicker(policy, opts);
  }

  pick(exclude?: ReadonlySet<string>, hashKey?: string): Endpoint | null {
    const share = this._localShare;
    let local = true;
    if (share < 1) {
      // A hash key decides the tier too, so affinity survives a partial failover.
      const u = hashKey !== undefined && this.policy === "ring_hash"
        ? hashString(hashKey) / 4294967296
        : this._opts.random();
      local = u < share;
    }
    const first = local ? this._local : this._remote;
    const second = local ? this._remote : this._local;
    const s = first.pick(exclude, hashKey) ?? second.pick(exclude, hashKey);
    return s === null ? null : s.endpoint;
  }

  onStart(ep: Endpoint): void {
    const s = this._states.get(ep.key);
    if (s !== undefined) s.active++;
  }

  onEnd(ep: Endpoint, latencyMs: number, ok: boolean): void {
    const s = this._states.get(ep.key);
    if (s === undefined) return; // removed from the catalog while in flight
    if (s.active > 0) s.active--;
    if (this.policy === "ewma") {
      const sample = ok ? latencyMs : Math.max(latencyMs, this._penaltyMs);
      observeEwma(s, this._opts.now(), sample, this._decayMs);
    }
  }

  update(endpoints: readonly Endpoint[]): void {
    const next = new Map<string, EndpointState>();
    const now = this._opts.now();
    for (const ep of endpoints) {
      if (next.has(ep.key)) continue;
      const old = this._states.get(ep.key);
      if (old !== undefined) {
        old.endpoint = ep;
        next.set(ep.key, old);
      } else {
        next.set(ep.key, new EndpointState(ep, now, this._penaltyMs));
      }
    }
    this._states = next;
    this._rebuild();
  }

  setEjected(key: string, ejected: boolean): void {
    const s = this._states.get(key);
    if (s === undefined || s.ejected === ejected) return;
    s.ejected = ejected;
    this._rebuild();
  }

  eligibleCount(): number {
    return this._eligible;
  }

  localShare(): number {
    return this._localShare;
  }

  stats(): EndpointStats[] {
    const now = this._opts.now();
    const out: EndpointStats[] = [];
    for (const s of this._states.values()) {
      const elapsed = Math.max(0, now - s.ewmaStampMs);
      out.push({
        endpoint: s.endpoint,
        active: s.active,
        ewmaMs: s.ewmaMs * Math.exp(-elapsed / this._decayMs),
        ejected: s.ejected,
        eligible: s.eligible(),
      });
    }
    return out;
  }

  private _rebuild(): void {
    const local: EndpointState[] = [];
    const remote: EndpointState[] = [];
    let localTotal = 0;
    let eligible = 0;
    for (const s of this._states.values()) {
      const isLocal = !this._zoned || s.endpoint.zone === this._opts.localZone;
      if (isLocal) localTotal++;
      if (!s.eligible()) continue;
      eligible++;
      (isLocal ? local : remote).push(s);
    }
    this._eligible = eligible;
    this._local.rebuild(local);
    this._remote.rebuild(remote);
    if (!this._zoned) {
      this._localShare = 1;
    } else if (localTotal === 0) {
      this._localShare = 0;
    } else {
      const healthyPercent = (100 * local.length) / localTotal;
      this._localShare = healthyPercent >= this._threshold || this._threshold <= 0
        ? 1
        : healthyPercent / this._threshold;
    }
  }
}
