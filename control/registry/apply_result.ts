/**
 * What applying one log entry returns (a tagged value, or a refusal with a code the API maps
 * to a status), and the two indexes an apply moves. Shared by the registry's parts so each
 * reports alike.
 * @module
 */
import type { Instance } from "./instance.ts";

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

/** A refusal at Raft `index`; the state is unchanged. */
export function fail(index: number, code: ApplyErrorCode, message: string): ApplyResult {
  return { ok: false, index, error: { code, message } };
}

/**
 * The registry's two indexes, shared by its parts: `applied` moves with every entry, `catalog`
 * only with an entry that changed what proxies see, so blocking queries wake on real changes.
 */
export class StateIndexes {
  /** Raft index of the last applied entry. */
  applied = 0;
  /** Raft index of the last entry that changed the state; never decreases. */
  catalog = 0;
}

/** Freezes `v` and everything it holds, so stored records cannot be changed from outside. */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

/** Code-unit order of strings, the same on every node whatever its locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
