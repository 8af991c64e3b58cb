/**
 * The services part of the registry: instances by service, with the bounds that keep one
 * certificate or one operator from growing every node's memory and every proxy's catalog
 * (instances per service, in all, catalog bytes, a proxy's quota), and the queries on them.
 * @module
 */
import { instanceBytes, MAX_CATALOG_INSTANCE_BYTES } from "./budget.ts";
import { type Health, HEALTH_VALUES, type Instance } from "./instance.ts";
import {
  type ApplyResult,
  compareStrings,
  deepFreeze,
  fail,
  type StateIndexes,
} from "./apply_result.ts";

/**
 * Most instances of one service. A proxy may register instances of its own service only, but
 * any number of them; this bounds what one certificate can add to every node and catalog.
 */
export const MAX_INSTANCES_PER_SERVICE = 4096;
/** Most instances in the registry. */
export const MAX_INSTANCES = 65_536;
/** A service with its instance counts by health. */
export interface ServiceSummary {
  /** Service name. */
  name: string;
  /** Total number of instances. */
  instances: number;
  /** Instances whose health is passing. */
  passing: number;
  /** Instances whose health is warning. */
  warning: number;
  /** Instances whose health is critical. */
  critical: number;
}

/** Filters of {@linkcode RegistryState.instances}. */
export interface InstanceFilter {
  /** Only instances that can take traffic (passing or warning). @default false */
  healthy?: boolean;
  /** Only instances in this zone. */
  zone?: string;
  /** Only instances that declare this capability. */
  capability?: string;
}

/** Filters of {@linkcode ServiceTable.instances}. */
export interface InstanceFilter {
  /** Only instances that can take traffic (passing or warning). @default false */
  healthy?: boolean;
  /** Only instances in this zone. */
  zone?: string;
  /** Only instances that declare this capability. */
  capability?: string;
}

function _sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether two instances are equal as `canonicalJson` would judge them (meta key order
 * ignored, list order kept), field by field: re-registering an unchanged instance is the
 * common write, and serialising both sides cost more than the rest of the apply.
 */
export function sameInstance(a: Instance, b: Instance): boolean {
  if (
    a.id !== b.id || a.service !== b.service || a.node !== b.node || a.address !== b.address ||
    a.port !== b.port || a.zone !== b.zone || a.version !== b.version || a.weight !== b.weight ||
    a.health !== b.health || !_sameList(a.tags, b.tags) ||
    !_sameList(a.capabilities, b.capabilities)
  ) return false;
  const ka = Object.keys(a.meta);
  if (ka.length !== Object.keys(b.meta).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b.meta, k) || a.meta[k] !== b.meta[k]) return false;
  }
  return true;
}

/** The registered instances by service, applied deterministically. */
export class ServiceTable {
  #services = new Map<string, Map<string, Instance>>();
  /** {@linkcode instanceBytes} of every instance, kept with each write. */
  #bytes = 0;
  readonly #at: StateIndexes;

  /** Creates an empty table that moves `at.catalog` on every change. */
  constructor(at: StateIndexes) {
    this.#at = at;
  }

  /** Adds or replaces an instance; `quota` caps the service when a proxy certificate asks. */
  register(index: number, inst: Instance, quota?: number): ApplyResult {
    // No copy: applyValidated owns the command it is given (see there).
    const frozen = deepFreeze(inst);
    let svc = this.#services.get(inst.service);
    const prev = svc?.get(inst.id);
    if (!prev && quota !== undefined && (svc?.size ?? 0) >= quota) {
      return fail(
        index,
        "quota_exceeded",
        `service ${inst.service} has ${
          svc?.size ?? 0
        } instances, the most a proxy certificate may register (${quota}); an operator can register more`,
      );
    }
    const bytes = instanceBytes(inst);
    const grow = bytes - (prev ? instanceBytes(prev) : 0);
    // Only growth is refused, so a catalog already over the budget can still shrink.
    if (grow > 0 && this.#bytes + grow > MAX_CATALOG_INSTANCE_BYTES) {
      return fail(
        index,
        "catalog_budget",
        `the catalog's instances would take ${
          this.#bytes + grow
        } bytes, over the budget of ${MAX_CATALOG_INSTANCE_BYTES}; this instance takes ${bytes}`,
      );
    }
    if (!prev) {
      // Counted on every node the same way (the applied state), so all refuse alike.
      if ((svc?.size ?? 0) >= MAX_INSTANCES_PER_SERVICE) {
        return fail(
          index,
          "too_many_instances",
          `service ${inst.service} has ${MAX_INSTANCES_PER_SERVICE} instances already`,
        );
      }
      let total = 0;
      for (const s of this.#services.values()) total += s.size;
      if (total >= MAX_INSTANCES) {
        return fail(index, "too_many_instances", `the registry holds ${MAX_INSTANCES} instances`);
      }
    }
    const changed = !prev || !sameInstance(prev, frozen);
    if (changed) {
      if (!svc) {
        svc = new Map();
        this.#services.set(inst.service, svc);
      }
      svc.set(inst.id, frozen);
      this.#bytes += grow;
      this.#at.catalog = index;
    }
    return {
      ok: true,
      index,
      value: {
        type: "register_instance",
        created: !prev,
        changed,
        instance: prev && !changed ? prev : frozen,
      },
    };
  }

  /** Removes an instance. */
  deregister(index: number, service: string, id: string): ApplyResult {
    const svc = this.#services.get(service);
    const prev = svc?.get(id);
    if (!svc || !prev) return fail(index, "not_found", `no instance ${id} of service ${service}`);
    svc.delete(id);
    this.#bytes -= instanceBytes(prev);
    if (svc.size === 0) this.#services.delete(service);
    this.#at.catalog = index;
    return { ok: true, index, value: { type: "deregister_instance", instance: prev } };
  }

  /** Applies a batch of health changes; instances gone since are skipped. */
  setHealth(
    index: number,
    changes: { service: string; id: string; health: Health }[],
  ): ApplyResult {
    let changed = 0;
    let unknown = 0;
    for (const ch of changes) {
      const svc = this.#services.get(ch.service);
      const prev = svc?.get(ch.id);
      // Instances deregistered while a health change was in flight are skipped, not an error:
      // the leader batches changes and one stale entry must not drop the others.
      if (!svc || !prev) {
        unknown++;
        continue;
      }
      if (prev.health === ch.health) continue;
      svc.set(ch.id, deepFreeze({ ...prev, health: ch.health }));
      changed++;
    }
    if (changed > 0) this.#at.catalog = index;
    return { ok: true, index, value: { type: "set_health", changed, unknown } };
  }

  /** Service names (sorted) with instance counts by health. */
  listServices(): ServiceSummary[] {
    const out: ServiceSummary[] = [];
    for (const name of [...this.#services.keys()].sort(compareStrings)) {
      const s: ServiceSummary = { name, instances: 0, passing: 0, warning: 0, critical: 0 };
      for (const inst of this.#services.get(name)!.values()) {
        s.instances++;
        s[inst.health]++;
      }
      out.push(s);
    }
    return out;
  }

  /** Instances of a service sorted by id, filtered; empty for an unknown service. */
  instances(service: string, filter: InstanceFilter = {}): Instance[] {
    const svc = this.#services.get(service);
    if (!svc) return [];
    return [...svc.values()]
      .filter((i) =>
        (!filter.healthy || i.health !== "critical") &&
        (filter.zone === undefined || i.zone === filter.zone) &&
        (filter.capability === undefined || i.capabilities.includes(filter.capability))
      )
      .sort((a, b) => compareStrings(a.id, b.id));
  }

  /**
   * Every registered instance, in no particular order, without copying or sorting: the leader's
   * lease sweep walks them all twice a second.
   */
  *allInstances(): IterableIterator<Instance> {
    for (const svc of this.#services.values()) yield* svc.values();
  }

  /** One instance, or undefined. */
  instance(service: string, id: string): Instance | undefined {
    return this.#services.get(service)?.get(id);
  }

  /** Whether the service has at least one instance. */
  hasService(service: string): boolean {
    return this.#services.has(service);
  }

  /** Number of instances by health, across all services. */
  healthCounts(): Record<Health, number> {
    const out = Object.fromEntries(HEALTH_VALUES.map((h) => [h, 0])) as Record<Health, number>;
    for (const svc of this.#services.values()) for (const i of svc.values()) out[i.health]++;
    return out;
  }

  /** Instances by service name, services and instances sorted by name/id. */
  byService(): Record<string, Instance[]> {
    const services: Record<string, Instance[]> = {};
    for (const name of [...this.#services.keys()].sort(compareStrings)) {
      services[name] = this.instances(name);
    }
    return services;
  }

  /** Every instance, sorted by service then id (the snapshot's order). */
  sorted(): Instance[] {
    const instances: Instance[] = [];
    for (const name of [...this.#services.keys()].sort(compareStrings)) {
      instances.push(...this.instances(name));
    }
    return instances;
  }

  /** Adds an instance read from a checked snapshot (no bounds: it was applied once already). */
  load(inst: Instance): void {
    let svc = this.#services.get(inst.service);
    if (!svc) {
      svc = new Map();
      this.#services.set(inst.service, svc);
    }
    svc.set(inst.id, deepFreeze(inst));
    this.#bytes += instanceBytes(inst);
  }
}
