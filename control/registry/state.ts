/**
 * The registry state machine: services and their instances, declarative resources with a
 * bounded revision history, and the credentials (CA, join and operator tokens). Pure and
 * deterministic: every control node applies the same log to it and must reach the same state,
 * so `apply` never throws on bad input and never reads a clock.
 *
 * {@linkcode RegistryState} is the façade the driver and the API use; each concern lives in
 * its own module: `service_table.ts`, `resource_store.ts`, `credentials.ts`, `snapshot.ts`.
 * @module
 */
import type { CaState } from "../ca/mod.ts";
import type { JoinTokenRecord, OperatorTokenRecord } from "../auth/mod.ts";
import { RegistryCommandSchema, type ValidatedCommand } from "./commands.ts";
import type { RegistryCommand } from "./commands.ts";
import type { Health, Instance } from "./instance.ts";
import { type ApplyResult, fail, StateIndexes } from "./apply_result.ts";
import { Credentials } from "./credentials.ts";
import { ResourceStore, type ResourceView, type Revision } from "./resource_store.ts";
import { type InstanceFilter, type ServiceSummary, ServiceTable } from "./service_table.ts";
import { captureSnapshot, parseSnapshot } from "./snapshot.ts";
import { encodeSnapshotParts, type SnapshotParts } from "./snapshot_encode.ts";

export type {
  ApplyErrorCode,
  ApplyResult,
  ApplyValue,
  ResourceItemResult,
  ResourceOutcome,
} from "./apply_result.ts";
export { MAX_REVOKED_BOOTSTRAP_HASHES, MAX_REVOKED_OPERATOR_HASHES } from "./credentials.ts";
export {
  MAX_DELETED_RESOURCES_KEPT,
  MAX_RESOURCES,
  MAX_RESOURCES_PER_KIND,
  MAX_REVISIONS_KEPT,
  type ResourceView,
  type Revision,
} from "./resource_store.ts";
export {
  type InstanceFilter,
  MAX_INSTANCES,
  MAX_INSTANCES_PER_SERVICE,
  sameInstance,
  type ServiceSummary,
} from "./service_table.ts";
export { SNAPSHOT_VERSION, SnapshotError } from "./snapshot.ts";
export { canonicalJson } from "./canonical_json.ts";

/** Everything a proxy needs, as of catalog index `index`. */
export interface Catalog {
  /** Raft index of the last change to the catalog. */
  index: number;
  /** Instances by service name, services and instances sorted by name/id. */
  services: Record<string, Instance[]>;
  /** Current resource documents, sorted by kind then name. */
  resources: Record<string, unknown>[];
  /**
   * What proxies trust and refuse: the CA roots (PEM), revoked SPIFFE ids and distrusted
   * intermediates (PEM, `control/ca/distrust.ts`). Each moves the
   * catalog index, so a blocking query carries a rotation or revocation to every proxy at once.
   */
  trust: { roots: string[]; revoked: string[]; distrusted?: string[] };
}

/** The replicated registry: apply committed commands, answer queries, snapshot and restore. */
export class RegistryState {
  readonly #at = new StateIndexes();
  readonly #services = new ServiceTable(this.#at);
  readonly #resources = new ResourceStore(this.#at);
  readonly #credentials = new Credentials(this.#at);

  /** Raft index of the last applied entry (changed the state or not). */
  get appliedIndex(): number {
    return this.#at.applied;
  }

  /** Catalog index: Raft index of the last entry that changed the state; never decreases. */
  get index(): number {
    return this.#at.catalog;
  }

  /**
   * Applies the committed entry at Raft `index`. Invalid commands and commands on missing
   * objects return an error result and leave the state unchanged. Applying an index that is
   * not above the last applied one is a driver bug and throws.
   */
  apply(index: number, cmd: RegistryCommand): ApplyResult {
    if (!Number.isSafeInteger(index) || index <= this.#at.applied) {
      throw new Error(
        `registry apply out of order: index ${index} after applied index ${this.#at.applied}`,
      );
    }
    // Re-validated because the caller may hand over a value that never went through decode.
    const parsed = RegistryCommandSchema.safeParse(cmd);
    if (!parsed.success) {
      this.#at.applied = index;
      const issue = parsed.error.issues[0];
      return fail(
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
    if (!Number.isSafeInteger(index) || index <= this.#at.applied) {
      throw new Error(
        `registry apply out of order: index ${index} after applied index ${this.#at.applied}`,
      );
    }
    this.#at.applied = index;
    switch (c.type) {
      case "register_instance":
        return this.#services.register(index, c.instance, c.identity_quota);
      case "deregister_instance":
        return this.#services.deregister(index, c.service, c.id);
      case "set_health":
        return this.#services.setHealth(index, c.changes);
      case "put_resource":
        return this.#resources.put(index, c.items);
      case "delete_resource":
        return this.#resources.delete(index, c.kind, c.name);
      case "rollback_resource":
        return this.#resources.rollback(index, c.kind, c.name, c.revision);
      case "put_ca":
        return this.#credentials.putCa(index, c.ca, c.expect_root_id, c.expect_digest);
      case "create_join_token":
        return this.#credentials.createJoinToken(index, c.record);
      case "consume_join_token":
        return this.#credentials.consumeJoinToken(index, c.id, c.now);
      case "revoke_identity":
        return this.#credentials.revokeIdentity(index, c.spiffe_id, c.now, c.reason);
      case "put_operator_token":
        return this.#credentials.putOperatorToken(index, c.record);
      case "revoke_operator_token":
        return this.#credentials.revokeOperatorToken(index, c.id);
    }
  }

  /** The operator token records (hashes only), for authentication and listings. */
  operatorTokens(): readonly OperatorTokenRecord[] {
    return this.#credentials.operatorTokens();
  }

  /** Whether an operator token with this hash is registered, was revoked, or is unknown. */
  operatorTokenStatus(hash: string): "active" | "revoked" | "absent" {
    return this.#credentials.operatorTokenStatus(hash);
  }

  /**
   * The replicated CA, private keys included, or null before the leader bootstrapped one.
   * Never serve this: API routes use `publicCaView` / `trustBundle` of `control/ca`.
   */
  ca(): CaState | null {
    return this.#credentials.ca();
  }

  /** The join token records (hashes only), for redeem checks and listings. */
  joinTokens(): readonly JoinTokenRecord[] {
    return this.#credentials.joinTokens();
  }

  /** Service names (sorted) with instance counts by health. */
  listServices(): ServiceSummary[] {
    return this.#services.listServices();
  }

  /** Instances of a service sorted by id, filtered; empty for an unknown service. */
  instances(service: string, filter: InstanceFilter = {}): Instance[] {
    return this.#services.instances(service, filter);
  }

  /**
   * Every registered instance, in no particular order, without copying or sorting: the leader's
   * lease sweep walks them all twice a second.
   */
  allInstances(): IterableIterator<Instance> {
    return this.#services.allInstances();
  }

  /** One instance, or undefined. */
  instance(service: string, id: string): Instance | undefined {
    return this.#services.instance(service, id);
  }

  /** Whether the service has at least one instance. */
  hasService(service: string): boolean {
    return this.#services.hasService(service);
  }

  /** Number of instances by health, across all services. */
  healthCounts(): Record<Health, number> {
    return this.#services.healthCounts();
  }

  /** The current resource, or undefined when it never existed or was deleted. */
  getResource(kind: string, name: string): ResourceView | undefined {
    return this.#resources.getResource(kind, name);
  }

  /** Current resources, optionally of one kind, sorted by kind then name. */
  listResources(kind?: string): ResourceView[] {
    return this.#resources.listResources(kind);
  }

  /** Kept revisions of a resource, oldest first, or undefined when it never existed. */
  history(kind: string, name: string): readonly Revision[] | undefined {
    return this.#resources.history(kind, name);
  }

  /** Everything a proxy needs, as of the current catalog index. */
  catalog(): Catalog {
    return {
      index: this.#at.catalog,
      services: this.#services.byService(),
      resources: this.listResources().map((r) => r.resource),
      trust: this.#credentials.trust(),
    };
  }

  /** Serializes the whole state; equal states give equal bytes. */
  snapshot(): Uint8Array {
    return encodeSnapshotParts(this.snapshotParts());
  }

  /**
   * The state as {@linkcode snapshot} encodes it, captured at once and cheaply, so it stays this
   * index's state while it is encoded bit by bit ({@linkcode encodeSnapshotYielding}).
   */
  snapshotParts(): SnapshotParts {
    return captureSnapshot({
      appliedIndex: this.#at.applied,
      index: this.#at.catalog,
      instances: this.#services.sorted(),
      resources: this.#resources.sortedEntries(),
      credentials: this.#credentials.snapshotFields(),
    });
  }

  /** Rebuilds a state from {@linkcode snapshot} bytes; throws {@linkcode SnapshotError}. */
  static restore(bytes: Uint8Array): RegistryState {
    const snap = parseSnapshot(bytes);
    const st = new RegistryState();
    st.#at.applied = snap.appliedIndex;
    st.#at.catalog = snap.index;
    for (const inst of snap.instances) st.#services.load(inst);
    for (const r of snap.resources) st.#resources.load(r.kind, r.name, r.revisions);
    st.#credentials.load(snap.credentials);
    return st;
  }
}
