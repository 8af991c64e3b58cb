/**
 * The catalog as blocking queries receive it: the whole catalog encoded once per index and
 * shared by every answer, and deltas — only the services, resources and trust that changed since
 * an index this node served — so the bytes a change sends grow with the change, not the catalog.
 *
 * Pure: it is handed catalogs and keeps a bounded log of what changed between the ones it saw.
 * A delta is only built from an index this node served itself (every index in between is then
 * covered by the log); any other index gets the whole catalog, which is always correct.
 * @module
 */
import type { Catalog } from "../registry/mod.ts";

/** Changes remembered; a watcher further behind gets the whole catalog. */
export const CATALOG_CHANGE_LOG_SIZE = 256;
/** Header a proxy sends to ask for a delta; nodes without deltas ignore it and answer whole. */
export const CATALOG_DELTA_HEADER = "skein-catalog-delta";

/** What changed between two catalogs this node served. */
interface _Step {
  /** Index of the catalog before. */
  from: number;
  /** Index of the catalog after. */
  to: number;
  /** Services added, changed or removed. */
  services: ReadonlySet<string>;
  resources: boolean;
  trust: boolean;
}

/** The body of a delta answer: the new index and what changed since `delta.from`. */
export interface CatalogDelta {
  /** Index of the catalog the delta brings the watcher to. */
  index: number;
  delta: {
    /** The index the watcher holds; the delta applies only to it. */
    from: number;
    /** Services added or changed, with all their instances. */
    services: Record<string, unknown[]>;
    /** Services that no longer have any instance. */
    removed: string[];
    /** All resources, present only when they changed. */
    resources?: unknown[];
    /** The whole trust section, present only when it changed. */
    trust?: Catalog["trust"];
  };
}

/** Counters of what {@linkcode CatalogFeed} answered, for `/metrics`. */
export interface CatalogFeedStats {
  /** Answers carrying the whole catalog. */
  full: number;
  /** Answers carrying a delta. */
  deltas: number;
  /** Delta requests answered whole: the index was not one this node served or is too old. */
  fallbacks: number;
  /** Bytes of answers, whole and delta. */
  bytes: number;
}

const _enc = new TextEncoder();

function _sameArray(a: readonly unknown[] | undefined, b: readonly unknown[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  // The registry freezes its instances and replaces one that changes, so identity is equality.
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function _sameTrust(a: Catalog["trust"], b: Catalog["trust"]): boolean {
  const eq = (x: readonly string[], y: readonly string[]) =>
    x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(a.roots, b.roots) && eq(a.revoked, b.revoked) &&
    eq(a.distrusted ?? [], b.distrusted ?? []);
}

/** Computes what changed between two catalogs; pure. */
export function diffCatalogs(before: Catalog, after: Catalog): Omit<_Step, "from" | "to"> {
  const services = new Set<string>();
  for (const [name, list] of Object.entries(after.services)) {
    if (!_sameArray(before.services[name], list)) services.add(name);
  }
  for (const name of Object.keys(before.services)) {
    if (!(name in after.services)) services.add(name);
  }
  return {
    services,
    // Resources are few; when unsure they are simply sent again.
    resources: !_sameArray(before.resources, after.resources) &&
      JSON.stringify(before.resources) !== JSON.stringify(after.resources),
    trust: !_sameTrust(before.trust, after.trust),
  };
}

/** Encoded catalog answers, whole or as deltas, built once per index and shared. */
export class CatalogFeed {
  readonly #logSize: number;
  #current: Catalog | null = null;
  /** The state object {@linkcode follow} saw last. */
  #state: unknown = null;
  #full: Uint8Array | null = null;
  readonly #steps: _Step[] = [];
  /** Deltas to the current index, by the index they start from. */
  readonly #deltas = new Map<number, Uint8Array>();
  readonly stats: CatalogFeedStats = { full: 0, deltas: 0, fallbacks: 0, bytes: 0 };

  /** Creates a feed remembering `logSize` changes. */
  constructor(logSize = CATALOG_CHANGE_LOG_SIZE) {
    this.#logSize = logSize;
  }

  /** Index of the catalog answered now (0 before the first). */
  get index(): number {
    return this.#current?.index ?? 0;
  }

  /** Whether no catalog was observed yet. */
  get empty(): boolean {
    return this.#current === null;
  }

  /**
   * Brings the feed to `state`, the node's registry state now, and returns it: the catalog is
   * built and observed only when the index moved, and a new state object at the same index (a
   * snapshot installed) starts the log over.
   */
  follow(state: { readonly index: number; catalog(): Catalog }): this {
    if (this.#state !== state && this.#state !== null) this.reset();
    if (this.#state !== state || this.index !== state.index || this.empty) {
      this.observe(state.catalog());
      this.#state = state;
    }
    return this;
  }

  /** Forgets the catalog and its log: the state was replaced (a snapshot installed). */
  reset(): void {
    this.#current = null;
    this.#state = null;
    this.#full = null;
    this.#steps.length = 0;
    this.#deltas.clear();
  }

  /**
   * Makes `catalog` the current one if its index differs, logging what changed. A catalog with
   * a lower index (a rebuilt cluster, a restored snapshot) starts the log over.
   */
  observe(catalog: Catalog): void {
    const prev = this.#current;
    if (prev !== null && prev.index === catalog.index) return;
    this.#current = catalog;
    this.#full = null;
    this.#deltas.clear();
    if (prev === null) return;
    if (catalog.index < prev.index) {
      this.#steps.length = 0;
      return;
    }
    this.#steps.push({ from: prev.index, to: catalog.index, ...diffCatalogs(prev, catalog) });
    if (this.#steps.length > this.#logSize) this.#steps.shift();
  }

  /** The current catalog encoded as JSON, once per index. */
  full(): Uint8Array {
    if (this.#current === null) throw new Error("CatalogFeed: no catalog observed yet");
    this.#full ??= _enc.encode(JSON.stringify(this.#current));
    this.stats.full++;
    this.stats.bytes += this.#full.byteLength;
    return this.#full;
  }

  /**
   * The delta from `from` to the current catalog, encoded once and shared; null when `from` is
   * not an index this node served within its log (the caller then answers whole).
   */
  delta(from: number): Uint8Array | null {
    const cur = this.#current;
    if (cur === null) return null;
    let bytes = this.#deltas.get(from) ?? null;
    if (bytes === null) {
      const d = this.#build(cur, from);
      if (d === null) {
        this.stats.fallbacks++;
        return null;
      }
      bytes = _enc.encode(JSON.stringify(d));
      this.#deltas.set(from, bytes);
    }
    this.stats.deltas++;
    this.stats.bytes += bytes.byteLength;
    return bytes;
  }

  #build(cur: Catalog, from: number): CatalogDelta | null {
    const services = new Set<string>();
    let resources = false;
    let trust = false;
    if (from !== cur.index) {
      // Only an index this node served: between two served catalogs a service may have come
      // and gone, which no step records, so an index inside a step is not covered.
      const first = this.#steps.findIndex((s) => s.from === from);
      if (first < 0) return null;
      for (let i = first; i < this.#steps.length; i++) {
        const s = this.#steps[i]!;
        for (const name of s.services) services.add(name);
        resources ||= s.resources;
        trust ||= s.trust;
      }
    }
    const d: CatalogDelta = {
      index: cur.index,
      delta: { from, services: {}, removed: [] },
    };
    for (const name of [...services].sort()) {
      const list = cur.services[name];
      if (list === undefined) d.delta.removed.push(name);
      else d.delta.services[name] = list;
    }
    if (resources) d.delta.resources = cur.resources;
    if (trust) d.delta.trust = cur.trust;
    return d;
  }
}
