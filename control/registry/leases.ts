/**
 * Instance liveness from proxy heartbeats. Heartbeats are not Raft writes: the leader keeps
 * these leases in memory and commits only *changes* of health (SPEC section 2).
 *
 * Pure: every method takes `now` (milliseconds) from the caller.
 * @module
 */
import type { Health } from "./instance.ts";
import type { HealthChange } from "./commands.ts";

/** Default time without a heartbeat after which an instance becomes critical. */
export const DEFAULT_LEASE_TTL_MS = 15_000;
/** Default time before a health change that was handed out but not yet committed is retried. */
export const DEFAULT_PROPOSAL_RETRY_MS = 2_000;
/** Most leases tracked; heartbeats beyond it are refused so a flood cannot exhaust memory. */
export const MAX_LEASES = 100_000;

/** Options of {@linkcode LeaseTracker}. */
export interface LeaseOptions {
  /** Time without a heartbeat before an instance is critical. @default DEFAULT_LEASE_TTL_MS */
  ttlMs?: number;
  /** Grace after becoming leader before anything expires. @default ttlMs (one TTL) */
  graceMs?: number;
  /** Delay before re-reporting a change the driver did not commit. @default DEFAULT_PROPOSAL_RETRY_MS */
  retryMs?: number;
  /** Bound on tracked leases. @default MAX_LEASES */
  maxLeases?: number;
}

/** An instance as the committed catalog knows it, for {@linkcode LeaseTracker.expired}. */
export interface CommittedHealth {
  /** Service name. */
  service: string;
  /** Instance id. */
  id: string;
  /** Health currently committed in the registry. */
  health: Health;
}

interface _Lease {
  /** The {@linkcode LeaseTracker.expired} call that last saw the instance registered. */
  sweep: number;
  lastSeen: number;
  reported: Health;
  proposed?: { health: Health; at: number };
}

function _key(service: string, id: string): string {
  return `${service}\u0000${id}`;
}

/** Tracks heartbeats and derives the health changes the leader should commit. */
export class LeaseTracker {
  readonly ttlMs: number;
  readonly graceMs: number;
  readonly retryMs: number;
  readonly maxLeases: number;
  #leases = new Map<string, _Lease>();
  #graceUntil = 0;
  /** Counts {@linkcode expired} calls, so leases not seen in the latest one can be found. */
  #sweep = 0;

  /** Creates a tracker; call {@linkcode becameLeader} before relying on {@linkcode expired}. */
  constructor(opts: LeaseOptions = {}) {
    this.ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.graceMs = opts.graceMs ?? this.ttlMs;
    this.retryMs = opts.retryMs ?? DEFAULT_PROPOSAL_RETRY_MS;
    this.maxLeases = opts.maxLeases ?? MAX_LEASES;
  }

  /** Number of tracked leases. */
  get size(): number {
    return this.#leases.size;
  }

  /**
   * Records a heartbeat. `health` is what the proxy's local check says (default passing).
   * Returns false when the tracker is full and the lease is new.
   */
  heartbeat(service: string, id: string, health: Health | undefined, now: number): boolean {
    const k = _key(service, id);
    const lease = this.#leases.get(k);
    if (lease) {
      lease.lastSeen = Math.max(lease.lastSeen, now);
      lease.reported = health ?? "passing";
      return true;
    }
    if (this.#leases.size >= this.maxLeases) return false;
    this.#leases.set(k, { sweep: this.#sweep, lastSeen: now, reported: health ?? "passing" });
    return true;
  }

  /**
   * Starts a grace period: a new leader has no heartbeat history, so nothing may expire until
   * proxies had one full TTL to reach it. Existing leases are restarted at `now`.
   */
  becameLeader(now: number): void {
    this.#graceUntil = now + this.graceMs;
    for (const lease of this.#leases.values()) {
      lease.lastSeen = now;
      delete lease.proposed;
    }
  }

  /** Drops all leases, e.g. when this node stops being leader. */
  clear(): void {
    this.#leases.clear();
  }

  /** Forgets one lease (the instance was deregistered). */
  forget(service: string, id: string): void {
    this.#leases.delete(_key(service, id));
  }

  /**
   * The health changes to commit at `now`, given the committed health of every registered
   * instance: critical after `ttl` without a heartbeat (outside the grace period), otherwise
   * the health the proxy last reported. Only differences from the committed health are
   * returned, sorted by service then id; a change already returned is not returned again
   * until `retryMs` passed, so an in-flight proposal is not duplicated every tick. Leases of
   * instances no longer registered are dropped; registered instances never heard of get a
   * lease starting now.
   */
  expired(now: number, committed: Iterable<CommittedHealth>): HealthChange[] {
    const sweep = ++this.#sweep;
    const out: HealthChange[] = [];
    const inGrace = now < this.#graceUntil;
    for (const inst of committed) {
      const k = _key(inst.service, inst.id);
      let lease = this.#leases.get(k);
      if (!lease) {
        if (this.#leases.size >= this.maxLeases) continue;
        // Never heard of: start the clock now rather than condemning it at once.
        lease = { sweep, lastSeen: now, reported: inst.health };
        this.#leases.set(k, lease);
      }
      lease.sweep = sweep;
      const desired: Health = !inGrace && now - lease.lastSeen > this.ttlMs
        ? "critical"
        : lease.reported;
      if (desired === inst.health) {
        delete lease.proposed;
        continue;
      }
      if (lease.proposed?.health === desired && now - lease.proposed.at < this.retryMs) continue;
      lease.proposed = { health: desired, at: now };
      out.push({ service: inst.service, id: inst.id, health: desired });
    }
    // Deleting the current entry while iterating a Map is safe and visits every other one.
    for (const [k, lease] of this.#leases) if (lease.sweep !== sweep) this.#leases.delete(k);
    return out.sort((a, b) =>
      a.service < b.service
        ? -1
        : a.service > b.service
        ? 1
        : a.id < b.id
        ? -1
        : a.id > b.id
        ? 1
        : 0
    );
  }
}
