/**
 * The resources part of the registry: declarative documents by kind and name, each with a
 * bounded revision history (for `history` and `rollback`), capped per kind and in all, and
 * deleted ones forgotten past a bound, the same on every node.
 * @module
 */
import { canonicalJson } from "./canonical_json.ts";
import type { StoredResource } from "./commands.ts";
import {
  type ApplyResult,
  compareStrings,
  deepFreeze,
  fail,
  type ResourceItemResult,
  type StateIndexes,
} from "./apply_result.ts";

/** How many revisions of each resource are kept for `history` and `rollback`. */
export const MAX_REVISIONS_KEPT = 20;
/**
 * Most current resources of one kind. Every resource is in every node's memory, snapshot and
 * each proxy's catalog; an operator token must not be able to grow those without bound.
 */
export const MAX_RESOURCES_PER_KIND = 4096;
/** Most current resources of all kinds together. */
export const MAX_RESOURCES = 16_384;
/**
 * Most deleted resources whose history is kept (for `history` and `rollback`). Past it the
 * one deleted longest ago is forgotten, or creating and deleting new names would grow the
 * state forever.
 */
export const MAX_DELETED_RESOURCES_KEPT = 4096;
/** One revision of a resource; `resource` is null for a deletion. */
export interface Revision {
  /** Revision number, counting from 1 per resource. */
  revision: number;
  /** Raft index of the entry that made this revision. */
  index: number;
  /** The document, or null when this revision deleted the resource. */
  resource: Record<string, unknown> | null;
}

/** A current resource with its revision, as queries return it. */
export interface ResourceView {
  /** Kind of the resource. */
  kind: string;
  /** Name of the resource. */
  name: string;
  /** Current revision number. */
  revision: number;
  /** Raft index of the entry that made the current revision. */
  index: number;
  /** The document. */
  resource: Record<string, unknown>;
}

/** A resource with its kept revisions, oldest first; the last is current (null: deleted). */
export interface ResourceEntry {
  /** Kind of the resource. */
  kind: string;
  /** Name of the resource. */
  name: string;
  /** Kept revisions, oldest first. */
  revisions: Revision[];
}

function _key(kind: string, name: string): string {
  return `${kind}\u0000${name}`;
}

/** The resources and their histories, applied deterministically. */
export class ResourceStore {
  #resources = new Map<string, ResourceEntry>();
  readonly #at: StateIndexes;

  /** Creates an empty store that moves `at.catalog` on every change. */
  constructor(at: StateIndexes) {
    this.#at = at;
  }

  /** Current resources per kind, and in all. */
  #liveCounts(): { byKind: Map<string, number>; total: number } {
    const byKind = new Map<string, number>();
    let total = 0;
    for (const e of this.#resources.values()) {
      if (e.revisions.at(-1)?.resource == null) continue;
      byKind.set(e.kind, (byKind.get(e.kind) ?? 0) + 1);
      total++;
    }
    return { byKind, total };
  }

  /** Refuses to make `created` (kind → new current resources) current when over a cap. */
  #overCap(index: number, created: ReadonlyMap<string, number>): ApplyResult | null {
    if (created.size === 0) return null;
    const live = this.#liveCounts();
    let adding = 0;
    for (const [kind, n] of created) {
      const have = live.byKind.get(kind) ?? 0;
      if (have + n > MAX_RESOURCES_PER_KIND) {
        return fail(
          index,
          "resource_limit",
          `kind ${kind} has ${have} resources and this adds ${n}: at most ${MAX_RESOURCES_PER_KIND} are kept per kind; delete some first`,
        );
      }
      adding += n;
    }
    if (live.total + adding > MAX_RESOURCES) {
      return fail(
        index,
        "resource_limit",
        `the registry has ${live.total} resources and this adds ${adding}: at most ${MAX_RESOURCES} are kept; delete some first`,
      );
    }
    return null;
  }

  /** Forgets the deleted resources beyond {@linkcode MAX_DELETED_RESOURCES_KEPT}, oldest first. */
  #pruneDeleted(): void {
    const deleted: [string, number][] = [];
    for (const [key, e] of this.#resources) {
      const last = e.revisions.at(-1);
      if (last !== undefined && last.resource === null) deleted.push([key, last.index]);
    }
    if (deleted.length <= MAX_DELETED_RESOURCES_KEPT) return;
    // By the deletion's log index, so every node forgets the same ones whatever its map order
    // (a node restored from a snapshot inserted its entries in another order).
    deleted.sort((a, b) => a[1] - b[1]);
    for (const [key] of deleted.slice(0, deleted.length - MAX_DELETED_RESOURCES_KEPT)) {
      this.#resources.delete(key);
    }
  }

  /** Puts resources, all or nothing: a new revision each unless unchanged. */
  put(index: number, items: StoredResource[]): ApplyResult {
    // All or nothing: count what the command would make current before changing anything.
    const created = new Map<string, number>();
    const seen = new Set<string>();
    for (const item of items) {
      const key = _key(item.kind, item.name);
      if (seen.has(key)) continue;
      seen.add(key);
      if (this.#resources.get(key)?.revisions.at(-1)?.resource != null) continue;
      created.set(item.kind, (created.get(item.kind) ?? 0) + 1);
    }
    const refused = this.#overCap(index, created);
    if (refused !== null) return refused;
    const results: ResourceItemResult[] = [];
    let changed = false;
    for (const item of items) {
      const key = _key(item.kind, item.name);
      const entry = this.#resources.get(key);
      const last = entry?.revisions.at(-1);
      const doc = deepFreeze(structuredClone(item.resource));
      if (entry && last && last.resource && canonicalJson(last.resource) === canonicalJson(doc)) {
        results.push({
          kind: item.kind,
          name: item.name,
          outcome: "unchanged",
          revision: last.revision,
        });
        continue;
      }
      const revision = (last?.revision ?? 0) + 1;
      this.#pushRevision(key, item.kind, item.name, { revision, index, resource: doc });
      results.push({
        kind: item.kind,
        name: item.name,
        outcome: last?.resource ? "updated" : "created",
        revision,
      });
      changed = true;
    }
    if (changed) this.#at.catalog = index;
    return { ok: true, index, value: { type: "put_resource", items: results } };
  }

  /** Deletes a resource, keeping its history (a deletion revision). */
  delete(index: number, kind: string, name: string): ApplyResult {
    const key = _key(kind, name);
    const last = this.#resources.get(key)?.revisions.at(-1);
    if (!last || !last.resource) return fail(index, "not_found", `no resource ${kind}/${name}`);
    const revision = last.revision + 1;
    this.#pushRevision(key, kind, name, { revision, index, resource: null });
    this.#pruneDeleted();
    this.#at.catalog = index;
    return { ok: true, index, value: { type: "delete_resource", revision } };
  }

  /** Makes an earlier revision current again, as a new revision. */
  rollback(index: number, kind: string, name: string, target: number): ApplyResult {
    const key = _key(kind, name);
    const entry = this.#resources.get(key);
    if (!entry) return fail(index, "not_found", `no resource ${kind}/${name}`);
    const rev = entry.revisions.find((r) => r.revision === target);
    if (!rev) {
      const kept = entry.revisions.map((r) => r.revision).join(", ");
      return fail(
        index,
        "revision_not_found",
        `resource ${kind}/${name} has no revision ${target} (kept: ${kept})`,
      );
    }
    if (!rev.resource) {
      return fail(
        index,
        "invalid_revision",
        `revision ${target} of ${kind}/${name} is a deletion; roll back to a revision that has content`,
      );
    }
    const last = entry.revisions.at(-1)!;
    if (last.resource === null) {
      // Bringing a deleted resource back makes it current again: the caps apply.
      const refused = this.#overCap(index, new Map([[kind, 1]]));
      if (refused !== null) return refused;
    }
    if (last.resource && canonicalJson(last.resource) === canonicalJson(rev.resource)) {
      return {
        ok: true,
        index,
        value: { type: "rollback_resource", outcome: "unchanged", revision: last.revision },
      };
    }
    const revision = last.revision + 1;
    this.#pushRevision(key, kind, name, { revision, index, resource: rev.resource });
    this.#at.catalog = index;
    return { ok: true, index, value: { type: "rollback_resource", outcome: "updated", revision } };
  }

  #pushRevision(key: string, kind: string, name: string, rev: Revision): void {
    let entry = this.#resources.get(key);
    if (!entry) {
      entry = { kind, name, revisions: [] };
      this.#resources.set(key, entry);
    }
    entry.revisions.push(deepFreeze(rev));
    if (entry.revisions.length > MAX_REVISIONS_KEPT) {
      entry.revisions.splice(0, entry.revisions.length - MAX_REVISIONS_KEPT);
    }
  }

  /** The current resource, or undefined when it never existed or was deleted. */
  getResource(kind: string, name: string): ResourceView | undefined {
    const entry = this.#resources.get(_key(kind, name));
    const last = entry?.revisions.at(-1);
    if (!entry || !last || !last.resource) return undefined;
    return {
      kind,
      name,
      revision: last.revision,
      index: last.index,
      resource: last.resource,
    };
  }

  /** Current resources, optionally of one kind, sorted by kind then name. */
  listResources(kind?: string): ResourceView[] {
    const out: ResourceView[] = [];
    for (const e of this.sortedEntries()) {
      if (kind !== undefined && e.kind !== kind) continue;
      const v = this.getResource(e.kind, e.name);
      if (v) out.push(v);
    }
    return out;
  }

  /** Kept revisions of a resource, oldest first, or undefined when it never existed. */
  history(kind: string, name: string): readonly Revision[] | undefined {
    return this.#resources.get(_key(kind, name))?.revisions;
  }

  /** The resources with their kept revisions, sorted by kind then name. */
  sortedEntries(): ResourceEntry[] {
    return [...this.#resources.values()].sort((a, b) =>
      compareStrings(a.kind, b.kind) || compareStrings(a.name, b.name)
    );
  }

  /** Adds a resource read from a checked snapshot; revisions are frozen as stored. */
  load(kind: string, name: string, revisions: Revision[]): void {
    this.#resources.set(_key(kind, name), {
      kind,
      name,
      revisions: revisions.map((rev) => deepFreeze(rev)),
    });
  }
}
