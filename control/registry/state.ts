/**
 * The registry state machine: services and their instances, and declarative resources with
 * a bounded revision history. Pure and deterministic: every control node applies the same
 * log to it and must reach the same state, so `apply` never throws on bad input and never
 * reads a clock.
 * @module
 */
import { z } from "zod";
import {
  type Health,
  HEALTH_VALUES,
  type Instance,
  InstanceSchema,
  NameSchema,
} from "./instance.ts";
import { instanceBytes, MAX_CATALOG_INSTANCE_BYTES } from "./budget.ts";
import { canonicalJson } from "./canonical_json.ts";
import { encodeSnapshotParts, type SnapshotParts } from "./snapshot_encode.ts";
import { caDigest, type CaState, parseCaState, revokeIdentity, trustBundle } from "../ca/mod.ts";
import {
  addJoinToken,
  addOperatorToken,
  BOOTSTRAP_TOKEN_ID_PREFIX,
  consumeJoinToken,
  deleteOperatorToken,
  type JoinTokenRecord,
  MAX_OPERATOR_TOKENS,
  type OperatorTokenRecord,
  pruneJoinTokens,
} from "../auth/mod.ts";
import {
  JoinTokenRecordSchema,
  KindSchema,
  OperatorTokenRecordSchema,
  type RegistryCommand,
  RegistryCommandSchema,
  type StoredResource,
  type ValidatedCommand,
} from "./commands.ts";

/**
 * Most instances of one service. A proxy may register instances of its own service only, but
 * any number of them; this bounds what one certificate can add to every node and catalog.
 */
export const MAX_INSTANCES_PER_SERVICE = 4096;
/** Most instances in the registry. */
export const MAX_INSTANCES = 65_536;
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
/** Version tag written into snapshots, bumped when their layout changes. */
export const SNAPSHOT_VERSION = 1;
/**
 * Most hashes of revoked operator tokens made through the API remembered; beyond the bound the
 * oldest is forgotten (nothing proposes a random token's hash again).
 */
export const MAX_REVOKED_OPERATOR_HASHES = MAX_OPERATOR_TOKENS;
/**
 * Most hashes of revoked bootstrap tokens remembered, apart from the others so that no number
 * of later revocations pushes one out: each node holding the file would register it again as
 * an admin token. One per bootstrap token file a cluster ever had, so the bound is never near.
 */
export const MAX_REVOKED_BOOTSTRAP_HASHES = MAX_OPERATOR_TOKENS;

/** Why a command was refused; the state is unchanged in every case. */
export type ApplyErrorCode =
  | "invalid_command"
  | "not_found"
  | "revision_not_found"
  | "invalid_revision"
  | "ca_exists"
  | "ca_conflict"
  | "invalid_ca"
  | "no_ca"
  | "invalid_identity"
  | "too_many_tokens"
  | "too_many_instances"
  | "quota_exceeded"
  | "catalog_budget"
  | "resource_limit"
  | "token_exists"
  | "token_revoked"
  | "join_token_unknown"
  | "join_token_expired"
  | "join_token_used_up";

/** What happened to one resource of a `put_resource` command. */
export type ResourceOutcome = "created" | "updated" | "unchanged";

/** The per-resource report of a `put_resource` command. */
export interface ResourceItemResult {
  /** Kind of the resource. */
  kind: string;
  /** Name of the resource. */
  name: string;
  /** Whether it was new, changed or identical to the current revision. */
  outcome: ResourceOutcome;
  /** The current revision after the command. */
  revision: number;
}

/** The value of a successfully applied command, tagged like the command. */
export type ApplyValue =
  | { type: "register_instance"; created: boolean; changed: boolean; instance: Instance }
  | { type: "deregister_instance"; instance: Instance }
  | { type: "set_health"; changed: number; unknown: number }
  | { type: "put_resource"; items: ResourceItemResult[] }
  | { type: "delete_resource"; revision: number }
  | { type: "rollback_resource"; outcome: "updated" | "unchanged"; revision: number }
  // No CA material in here: apply results travel back to API callers.
  | { type: "put_ca"; activeRootId: string }
  | { type: "create_join_token"; id: string }
  | { type: "consume_join_token"; id: string; service: string; usesLeft: number }
  | { type: "revoke_identity"; spiffeId: string; changed: boolean }
  | { type: "put_operator_token"; id: string }
  | { type: "revoke_operator_token"; id: string };

/** The outcome of applying one log entry; `index` is the Raft index it was applied at. */
export type ApplyResult =
  | { ok: true; index: number; value: ApplyValue }
  | { ok: false; index: number; error: { code: ApplyErrorCode; message: string } };

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

/** Everything a proxy needs, as of catalog index `index`. */
export interface Catalog {
  /** Raft index of the last change to the catalog. */
  index: number;
  /** Instances by service name, services and instances sorted by name/id. */
  services: Record<string, Instance[]>;
  /** Current resource documents, sorted by kind then name. */
  resources: Record<string, unknown>[];
  /**
   * What proxies trust and refuse: the CA roots (PEM) and revoked SPIFFE ids. Both move the
   * catalog index, so a blocking query carries a rotation or revocation to every proxy at once.
   */
  trust: { roots: string[]; revoked: string[] };
}

interface _ResourceEntry {
  kind: string;
  name: string;
  revisions: Revision[];
}

const _RevisionSchema = z.strictObject({
  revision: z.number().int().min(1),
  index: z.number().int().min(0),
  resource: z.record(z.string(), z.unknown()).nullable(),
});

const _SnapshotSchema = z.strictObject({
  version: z.literal(SNAPSHOT_VERSION),
  applied_index: z.number().int().min(0),
  index: z.number().int().min(0),
  instances: z.array(InstanceSchema),
  resources: z.array(z.strictObject({
    kind: KindSchema,
    name: NameSchema,
    revisions: z.array(_RevisionSchema).min(1).max(MAX_REVISIONS_KEPT),
  })),
  // Optional so snapshots written before the CA was replicated still restore.
  ca: z.record(z.string(), z.unknown()).optional(),
  join_tokens: z.array(JoinTokenRecordSchema).optional(),
  operator_tokens: z.array(OperatorTokenRecordSchema).max(MAX_OPERATOR_TOKENS).optional(),
  revoked_operator_hashes: z.array(z.string().regex(/^[0-9a-f]{64}$/))
    .max(MAX_REVOKED_OPERATOR_HASHES).optional(),
  revoked_bootstrap_hashes: z.array(z.string().regex(/^[0-9a-f]{64}$/))
    .max(MAX_REVOKED_BOOTSTRAP_HASHES).optional(),
});

/** Thrown by {@linkcode RegistryState.restore} for bytes that are not a valid snapshot. */
export class SnapshotError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SnapshotError";
  }
}

export { canonicalJson } from "./canonical_json.ts";

function _sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether two instances are equal as {@linkcode canonicalJson} would judge them (meta key order
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

function _deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) _deepFreeze(child);
  }
  return v;
}

function _resourceKey(kind: string, name: string): string {
  return `${kind}\u0000${name}`;
}

function _cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function _fail(index: number, code: ApplyErrorCode, message: string): ApplyResult {
  return { ok: false, index, error: { code, message } };
}

/** The replicated registry: apply committed commands, answer queries, snapshot and restore. */
export class RegistryState {
  #services = new Map<string, Map<string, Instance>>();
  /** {@linkcode instanceBytes} of every instance, kept with each write. */
  #instanceBytes = 0;
  #resources = new Map<string, _ResourceEntry>();
  #appliedIndex = 0;
  #index = 0;
  #ca: CaState | null = null;
  #joinTokens: readonly JoinTokenRecord[] = [];
  #operatorTokens: readonly OperatorTokenRecord[] = [];
  #revokedOperatorHashes: readonly string[] = [];
  #revokedBootstrapHashes: readonly string[] = [];

  /** Raft index of the last applied entry (changed the state or not). */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** Catalog index: Raft index of the last entry that changed the state; never decreases. */
  get index(): number {
    return this.#index;
  }

  /**
   * Applies the committed entry at Raft `index`. Invalid commands and commands on missing
   * objects return an error result and leave the state unchanged. Applying an index that is
   * not above the last applied one is a driver bug and throws.
   */
  apply(index: number, cmd: RegistryCommand): ApplyResult {
    if (!Number.isSafeInteger(index) || index <= this.#appliedIndex) {
      throw new Error(
        `registry apply out of order: index ${index} after applied index ${this.#appliedIndex}`,
      );
    }
    // Re-validated because the caller may hand over a value that never went through decode.
    const parsed = RegistryCommandSchema.safeParse(cmd);
    if (!parsed.success) {
      this.#appliedIndex = index;
      const issue = parsed.error.issues[0];
      return _fail(
        index,
        "invalid_command",
        `invalid registry command at ${issue?.path.map(String).join(".") || "(root)"}: ${
          issue?.message ?? "invalid"
        }`,
      );
    }
    return this.applyValidated(index, parsed.data as ValidatedCommand);
  }

  /**
   * {@linkcode apply} for a command that is already validated (decoded from a log entry, or
   * validated by the proposer): skips the schema pass, which is most of the cost of an apply.
   * Takes ownership of `c`: parts of it are frozen and stored, so the caller must not change
   * it afterwards (schema output and freshly decoded commands are never shared).
   */
  applyValidated(index: number, c: ValidatedCommand): ApplyResult {
    if (!Number.isSafeInteger(index) || index <= this.#appliedIndex) {
      throw new Error(
        `registry apply out of order: index ${index} after applied index ${this.#appliedIndex}`,
      );
    }
    this.#appliedIndex = index;
    switch (c.type) {
      case "register_instance":
        return this.#register(index, c.instance, c.identity_quota);
      case "deregister_instance":
        return this.#deregister(index, c.service, c.id);
      case "set_health":
        return this.#setHealth(index, c.changes);
      case "put_resource":
        return this.#putResources(index, c.items);
      case "delete_resource":
        return this.#deleteResource(index, c.kind, c.name);
      case "rollback_resource":
        return this.#rollback(index, c.kind, c.name, c.revision);
      case "put_ca":
        return this.#putCa(index, c.ca, c.expect_root_id, c.expect_digest);
      case "create_join_token":
        return this.#createJoinToken(index, c.record);
      case "consume_join_token":
        return this.#consumeJoinToken(index, c.id, c.now);
      case "revoke_identity":
        return this.#revokeIdentity(index, c.spiffe_id, c.now, c.reason);
      case "put_operator_token":
        return this.#putOperatorToken(index, c.record);
      case "revoke_operator_token":
        return this.#revokeOperatorToken(index, c.id);
    }
  }

  #putCa(
    index: number,
    raw: unknown,
    expectRootId: string | null,
    expectDigest: string | undefined,
  ): ApplyResult {
    const current = this.#ca?.activeRootId ?? null;
    if (expectDigest !== undefined && caDigest(this.#ca) !== expectDigest) {
      return _fail(
        index,
        "ca_conflict",
        "the CA changed since this change was computed (another rotation step or a revocation); " +
          "read it again and retry",
      );
    }
    if (current !== expectRootId) {
      return expectRootId === null
        ? _fail(index, "ca_exists", "the cluster already has a CA")
        : _fail(
          index,
          "ca_conflict",
          `expected active root ${expectRootId}, the CA has ${current ?? "none"}`,
        );
    }
    let ca: CaState;
    try {
      ca = parseCaState(raw);
    } catch (e) {
      return _fail(index, "invalid_ca", (e as Error).message);
    }
    this.#ca = _deepFreeze(ca);
    // The trust bundle is part of what proxies follow, so a CA change moves the catalog index.
    this.#index = index;
    return { ok: true, index, value: { type: "put_ca", activeRootId: ca.activeRootId } };
  }

  #createJoinToken(index: number, record: JoinTokenRecord): ApplyResult {
    if (this.#joinTokens.some((r) => r.id === record.id || r.hash === record.hash)) {
      return _fail(index, "token_exists", `join token ${record.id} already exists`);
    }
    // Pruned with the creation time carried in the command, so every node drops the same ones.
    let next: JoinTokenRecord[];
    try {
      next = addJoinToken(pruneJoinTokens(this.#joinTokens, record.createdAt), record);
    } catch (e) {
      return _fail(index, "too_many_tokens", (e as Error).message);
    }
    this.#joinTokens = _deepFreeze(next);
    return { ok: true, index, value: { type: "create_join_token", id: record.id } };
  }

  #consumeJoinToken(index: number, id: string, now: number): ApplyResult {
    const r = consumeJoinToken(this.#joinTokens, id, now);
    if (!r.ok) {
      const msg = r.reason === "unknown"
        ? "join token is not known (never created, deleted, or pruned)"
        : r.reason === "expired"
        ? `join token ${id} has expired`
        : `join token ${id} has no uses left`;
      return _fail(index, `join_token_${r.reason}`, msg);
    }
    this.#joinTokens = _deepFreeze(r.records);
    return {
      ok: true,
      index,
      value: { type: "consume_join_token", id, service: r.record.service, usesLeft: r.usesLeft },
    };
  }

  #putOperatorToken(index: number, record: OperatorTokenRecord): ApplyResult {
    if (this.#isRevokedHash(record.hash)) {
      return _fail(index, "token_revoked", `operator token ${record.id} was revoked`);
    }
    if (this.#operatorTokens.some((r) => r.id === record.id || r.hash === record.hash)) {
      return _fail(index, "token_exists", `operator token ${record.id} already exists`);
    }
    // Expired records go with the creation time carried in the command: same on every node.
    const live = this.#operatorTokens.filter((r) =>
      r.expiresAt === null || r.expiresAt > record.createdAt
    );
    let next: OperatorTokenRecord[];
    try {
      next = addOperatorToken(live, record);
    } catch (e) {
      return _fail(index, "too_many_tokens", (e as Error).message);
    }
    this.#operatorTokens = _deepFreeze(next);
    return { ok: true, index, value: { type: "put_operator_token", id: record.id } };
  }

  #revokeOperatorToken(index: number, id: string): ApplyResult {
    const rec = this.#operatorTokens.find((r) => r.id === id);
    if (!rec) return _fail(index, "not_found", `no operator token ${id}`);
    this.#operatorTokens = _deepFreeze(deleteOperatorToken(this.#operatorTokens, id));
    if (rec.id.startsWith(BOOTSTRAP_TOKEN_ID_PREFIX)) {
      this.#revokedBootstrapHashes = _deepFreeze(
        [...this.#revokedBootstrapHashes, rec.hash].slice(-MAX_REVOKED_BOOTSTRAP_HASHES),
      );
    } else {
      this.#revokedOperatorHashes = _deepFreeze(
        [...this.#revokedOperatorHashes, rec.hash].slice(-MAX_REVOKED_OPERATOR_HASHES),
      );
    }
    return { ok: true, index, value: { type: "revoke_operator_token", id } };
  }

  /** The operator token records (hashes only), for authentication and listings. */
  operatorTokens(): readonly OperatorTokenRecord[] {
    return this.#operatorTokens;
  }

  /** Whether an operator token with this hash is registered, was revoked, or is unknown. */
  operatorTokenStatus(hash: string): "active" | "revoked" | "absent" {
    if (this.#operatorTokens.some((r) => r.hash === hash)) return "active";
    return this.#isRevokedHash(hash) ? "revoked" : "absent";
  }

  #isRevokedHash(hash: string): boolean {
    return this.#revokedBootstrapHashes.includes(hash) ||
      this.#revokedOperatorHashes.includes(hash);
  }

  #revokeIdentity(index: number, spiffeId: string, now: number, reason: string): ApplyResult {
    if (!this.#ca) return _fail(index, "no_ca", "the cluster has no CA yet");
    let next: CaState;
    try {
      next = revokeIdentity(this.#ca, spiffeId, { now, reason });
    } catch (e) {
      return _fail(index, "invalid_identity", (e as Error).message);
    }
    const changed = next !== this.#ca;
    if (changed) {
      this.#ca = _deepFreeze(next);
      this.#index = index;
    }
    return { ok: true, index, value: { type: "revoke_identity", spiffeId, changed } };
  }

  /**
   * The replicated CA, private keys included, or null before the leader bootstrapped one.
   * Never serve this: API routes use `publicCaView` / `trustBundle` of `control/ca`.
   */
  ca(): CaState | null {
    return this.#ca;
  }

  /** The join token records (hashes only), for redeem checks and listings. */
  joinTokens(): readonly JoinTokenRecord[] {
    return this.#joinTokens;
  }

  #register(index: number, inst: Instance, quota?: number): ApplyResult {
    // No copy: applyValidated owns the command it is given (see there).
    const frozen = _deepFreeze(inst);
    let svc = this.#services.get(inst.service);
    const prev = svc?.get(inst.id);
    if (!prev && quota !== undefined && (svc?.size ?? 0) >= quota) {
      return _fail(
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
    if (grow > 0 && this.#instanceBytes + grow > MAX_CATALOG_INSTANCE_BYTES) {
      return _fail(
        index,
        "catalog_budget",
        `the catalog's instances would take ${
          this.#instanceBytes + grow
        } bytes, over the budget of ${MAX_CATALOG_INSTANCE_BYTES}; this instance takes ${bytes}`,
      );
    }
    if (!prev) {
      // Counted on every node the same way (the applied state), so all refuse alike.
      if ((svc?.size ?? 0) >= MAX_INSTANCES_PER_SERVICE) {
        return _fail(
          index,
          "too_many_instances",
          `service ${inst.service} has ${MAX_INSTANCES_PER_SERVICE} instances already`,
        );
      }
      let total = 0;
      for (const s of this.#services.values()) total += s.size;
      if (total >= MAX_INSTANCES) {
        return _fail(index, "too_many_instances", `the registry holds ${MAX_INSTANCES} instances`);
      }
    }
    const changed = !prev || !sameInstance(prev, frozen);
    if (changed) {
      if (!svc) {
        svc = new Map();
        this.#services.set(inst.service, svc);
      }
      svc.set(inst.id, frozen);
      this.#instanceBytes += grow;
      this.#index = index;
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

  #deregister(index: number, service: string, id: string): ApplyResult {
    const svc = this.#services.get(service);
    const prev = svc?.get(id);
    if (!svc || !prev) return _fail(index, "not_found", `no instance ${id} of service ${service}`);
    svc.delete(id);
    this.#instanceBytes -= instanceBytes(prev);
    if (svc.size === 0) this.#services.delete(service);
    this.#index = index;
    return { ok: true, index, value: { type: "deregister_instance", instance: prev } };
  }

  #setHealth(
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
      svc.set(ch.id, _deepFreeze({ ...prev, health: ch.health }));
      changed++;
    }
    if (changed > 0) this.#index = index;
    return { ok: true, index, value: { type: "set_health", changed, unknown } };
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
        return _fail(
          index,
          "resource_limit",
          `kind ${kind} has ${have} resources and this adds ${n}: at most ${MAX_RESOURCES_PER_KIND} are kept per kind; delete some first`,
        );
      }
      adding += n;
    }
    if (live.total + adding > MAX_RESOURCES) {
      return _fail(
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

  #putResources(index: number, items: StoredResource[]): ApplyResult {
    // All or nothing: count what the command would make current before changing anything.
    const created = new Map<string, number>();
    const seen = new Set<string>();
    for (const item of items) {
      const key = _resourceKey(item.kind, item.name);
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
      const key = _resourceKey(item.kind, item.name);
      const entry = this.#resources.get(key);
      const last = entry?.revisions.at(-1);
      const doc = _deepFreeze(structuredClone(item.resource));
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
    if (changed) this.#index = index;
    return { ok: true, index, value: { type: "put_resource", items: results } };
  }

  #deleteResource(index: number, kind: string, name: string): ApplyResult {
    const key = _resourceKey(kind, name);
    const last = this.#resources.get(key)?.revisions.at(-1);
    if (!last || !last.resource) return _fail(index, "not_found", `no resource ${kind}/${name}`);
    const revision = last.revision + 1;
    this.#pushRevision(key, kind, name, { revision, index, resource: null });
    this.#pruneDeleted();
    this.#index = index;
    return { ok: true, index, value: { type: "delete_resource", revision } };
  }

  #rollback(index: number, kind: string, name: string, target: number): ApplyResult {
    const key = _resourceKey(kind, name);
    const entry = this.#resources.get(key);
    if (!entry) return _fail(index, "not_found", `no resource ${kind}/${name}`);
    const rev = entry.revisions.find((r) => r.revision === target);
    if (!rev) {
      const kept = entry.revisions.map((r) => r.revision).join(", ");
      return _fail(
        index,
        "revision_not_found",
        `resource ${kind}/${name} has no revision ${target} (kept: ${kept})`,
      );
    }
    if (!rev.resource) {
      return _fail(
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
    this.#index = index;
    return { ok: true, index, value: { type: "rollback_resource", outcome: "updated", revision } };
  }

  #pushRevision(key: string, kind: string, name: string, rev: Revision): void {
    let entry = this.#resources.get(key);
    if (!entry) {
      entry = { kind, name, revisions: [] };
      this.#resources.set(key, entry);
    }
    entry.revisions.push(_deepFreeze(rev));
    if (entry.revisions.length > MAX_REVISIONS_KEPT) {
      entry.revisions.splice(0, entry.revisions.length - MAX_REVISIONS_KEPT);
    }
  }

  /** Service names (sorted) with instance counts by health. */
  listServices(): ServiceSummary[] {
    const out: ServiceSummary[] = [];
    for (const name of [...this.#services.keys()].sort(_cmp)) {
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
      .sort((a, b) => _cmp(a.id, b.id));
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

  /** The current resource, or undefined when it never existed or was deleted. */
  getResource(kind: string, name: string): ResourceView | undefined {
    const entry = this.#resources.get(_resourceKey(kind, name));
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
    for (const e of this.#sortedEntries()) {
      if (kind !== undefined && e.kind !== kind) continue;
      const v = this.getResource(e.kind, e.name);
      if (v) out.push(v);
    }
    return out;
  }

  /** Kept revisions of a resource, oldest first, or undefined when it never existed. */
  history(kind: string, name: string): readonly Revision[] | undefined {
    return this.#resources.get(_resourceKey(kind, name))?.revisions;
  }

  /** Everything a proxy needs, as of the current catalog index. */
  catalog(): Catalog {
    const services: Record<string, Instance[]> = {};
    for (const name of [...this.#services.keys()].sort(_cmp)) {
      services[name] = this.instances(name);
    }
    return {
      index: this.#index,
      services,
      resources: this.listResources().map((r) => r.resource),
      trust: this.#trust(),
    };
  }

  #trust(): Catalog["trust"] {
    const ca = this.ca();
    if (!ca) return { roots: [], revoked: [] };
    return { roots: trustBundle(ca), revoked: ca.revoked.map((r) => r.spiffeId) };
  }

  #sortedEntries(): _ResourceEntry[] {
    return [...this.#resources.values()].sort((a, b) =>
      _cmp(a.kind, b.kind) || _cmp(a.name, b.name)
    );
  }

  /** Serializes the whole state; equal states give equal bytes. */
  snapshot(): Uint8Array {
    return encodeSnapshotParts(this.snapshotParts());
  }

  /**
   * The state as {@linkcode snapshot} encodes it, captured at once and cheaply: everything but
   * the instances is encoded now, and the instances are frozen objects a later change replaces
   * rather than alters, so the capture stays this index's state while it is encoded bit by bit
   * ({@linkcode encodeSnapshotYielding}).
   */
  snapshotParts(): SnapshotParts {
    const instances: Instance[] = [];
    for (const name of [...this.#services.keys()].sort(_cmp)) {
      instances.push(...this.instances(name));
    }
    const body = {
      version: SNAPSHOT_VERSION,
      applied_index: this.#appliedIndex,
      index: this.#index,
      instances: [],
      resources: this.#sortedEntries().map((e) => ({
        kind: e.kind,
        name: e.name,
        revisions: e.revisions,
      })),
      // Written only when present, so a registry without security state snapshots as before.
      ...(this.#ca ? { ca: this.#ca } : {}),
      ...(this.#joinTokens.length > 0 ? { join_tokens: this.#joinTokens } : {}),
      ...(this.#operatorTokens.length > 0 ? { operator_tokens: this.#operatorTokens } : {}),
      ...(this.#revokedOperatorHashes.length > 0
        ? { revoked_operator_hashes: this.#revokedOperatorHashes }
        : {}),
      ...(this.#revokedBootstrapHashes.length > 0
        ? { revoked_bootstrap_hashes: this.#revokedBootstrapHashes }
        : {}),
    };
    const head = canonicalJson(body);
    // Keys are sorted, so `index` comes right before `instances`: this marker is unique.
    const marker = `"index":${this.#index},"instances":[]`;
    const at = head.indexOf(marker) + marker.length - 1;
    return { before: head.slice(0, at), instances, after: head.slice(at) };
  }

  /** Rebuilds a state from {@linkcode snapshot} bytes; throws {@linkcode SnapshotError}. */
  static restore(bytes: Uint8Array): RegistryState {
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (e) {
      throw new SnapshotError(`registry snapshot is not UTF-8 JSON: ${(e as Error).message}`);
    }
    const parsed = _SnapshotSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new SnapshotError(
        `invalid registry snapshot at ${issue?.path.map(String).join(".") || "(root)"}: ${
          issue?.message ?? "invalid"
        }`,
      );
    }
    const snap = parsed.data;
    if (snap.index > snap.applied_index) {
      throw new SnapshotError(
        `invalid registry snapshot: index ${snap.index} above applied_index ${snap.applied_index}`,
      );
    }
    const st = new RegistryState();
    st.#appliedIndex = snap.applied_index;
    st.#index = snap.index;
    for (const inst of snap.instances) {
      let svc = st.#services.get(inst.service);
      if (!svc) {
        svc = new Map();
        st.#services.set(inst.service, svc);
      }
      if (svc.has(inst.id)) {
        throw new SnapshotError(
          `invalid registry snapshot: duplicate instance ${inst.service}/${inst.id}`,
        );
      }
      svc.set(inst.id, _deepFreeze(inst));
      st.#instanceBytes += instanceBytes(inst);
    }
    for (const r of snap.resources) {
      const key = _resourceKey(r.kind, r.name);
      if (st.#resources.has(key)) {
        throw new SnapshotError(
          `invalid registry snapshot: duplicate resource ${r.kind}/${r.name}`,
        );
      }
      for (let i = 1; i < r.revisions.length; i++) {
        if (r.revisions[i]!.revision <= r.revisions[i - 1]!.revision) {
          throw new SnapshotError(
            `invalid registry snapshot: revisions of ${r.kind}/${r.name} are not increasing`,
          );
        }
      }
      st.#resources.set(key, {
        kind: r.kind,
        name: r.name,
        revisions: r.revisions.map((rev) => _deepFreeze(rev)),
      });
    }
    if (snap.ca !== undefined) {
      try {
        st.#ca = _deepFreeze(parseCaState(snap.ca));
      } catch (e) {
        throw new SnapshotError(`invalid registry snapshot: ca: ${(e as Error).message}`);
      }
    }
    st.#joinTokens = _deepFreeze(snap.join_tokens ?? []);
    st.#operatorTokens = _deepFreeze(snap.operator_tokens ?? []);
    st.#revokedOperatorHashes = _deepFreeze(snap.revoked_operator_hashes ?? []);
    st.#revokedBootstrapHashes = _deepFreeze(snap.revoked_bootstrap_hashes ?? []);
    return st;
  }
}
