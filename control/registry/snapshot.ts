/**
 * The registry snapshot's layout: capturing the state's parts into the canonical JSON every
 * node writes alike, and reading bytes back into checked parts (schema, bounds, duplicates,
 * revision order, the CA) before any of them is loaded.
 * @module
 */
import { z } from "zod";
import { type CaState, parseCaState } from "../ca/mod.ts";
import { MAX_OPERATOR_TOKENS } from "../auth/mod.ts";
import { canonicalJson } from "./canonical_json.ts";
import { JoinTokenRecordSchema, KindSchema, OperatorTokenRecordSchema } from "./commands.ts";
import {
  type CredentialFields,
  MAX_REVOKED_BOOTSTRAP_HASHES,
  MAX_REVOKED_OPERATOR_HASHES,
} from "./credentials.ts";
import { type Instance, InstanceSchema, NameSchema } from "./instance.ts";
import { MAX_REVISIONS_KEPT, type ResourceEntry, type Revision } from "./resource_store.ts";
import type { SnapshotParts } from "./snapshot_encode.ts";

/** Version tag written into snapshots, bumped when their layout changes. */
export const SNAPSHOT_VERSION = 1;

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

/** Thrown by `RegistryState.restore` for bytes that are not a valid snapshot. */
export class SnapshotError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SnapshotError";
  }
}

/** What a snapshot holds, checked and ready to load. */
export interface CheckedSnapshot {
  /** Raft index of the last applied entry. */
  appliedIndex: number;
  /** Catalog index. */
  index: number;
  /** Instances, no two with the same service and id. */
  instances: Instance[];
  /** Resources, no two with the same kind and name, revisions increasing. */
  resources: { kind: string; name: string; revisions: Revision[] }[];
  /** The credential records, the CA parsed. */
  credentials: CredentialFields;
}

/** What {@linkcode captureSnapshot} writes. */
export interface SnapshotInput {
  /** Raft index of the last applied entry. */
  appliedIndex: number;
  /** Catalog index. */
  index: number;
  /** Every instance, in snapshot order. */
  instances: Instance[];
  /** The resources with their kept revisions, sorted by kind then name. */
  resources: readonly ResourceEntry[];
  /** The credential records present. */
  credentials: CredentialFields;
}

/**
 * The state as a snapshot encodes it, captured at once and cheaply: everything but the
 * instances is encoded now; the instances are frozen objects a later change replaces rather
 * than alters, so the capture stays this index's state while it is encoded bit by bit.
 */
export function captureSnapshot(s: SnapshotInput): SnapshotParts {
  const body = {
    version: SNAPSHOT_VERSION,
    applied_index: s.appliedIndex,
    index: s.index,
    instances: [],
    resources: s.resources.map((e) => ({
      kind: e.kind,
      name: e.name,
      revisions: e.revisions,
    })),
    // Written only when present, so a registry without security state snapshots as before.
    ...s.credentials,
  };
  const head = canonicalJson(body);
  // Keys are sorted, so `index` comes right before `instances`: this marker is unique.
  const marker = `"index":${s.index},"instances":[]`;
  const at = head.indexOf(marker) + marker.length - 1;
  return { before: head.slice(0, at), instances: s.instances, after: head.slice(at) };
}

/** Adds `group/name` to `seen`, or throws when a snapshot holds it twice. */
function _once(seen: Set<string>, what: string, group: string, name: string): void {
  const key = `${group}\u0000${name}`;
  if (seen.has(key)) {
    throw new SnapshotError(`invalid registry snapshot: duplicate ${what} ${group}/${name}`);
  }
  seen.add(key);
}

/** Reads and checks snapshot bytes; throws {@linkcode SnapshotError}. */
export function parseSnapshot(bytes: Uint8Array): CheckedSnapshot {
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
  const seenInstances = new Set<string>();
  for (const inst of snap.instances) _once(seenInstances, "instance", inst.service, inst.id);
  const seenResources = new Set<string>();
  for (const r of snap.resources) {
    _once(seenResources, "resource", r.kind, r.name);
    for (let i = 1; i < r.revisions.length; i++) {
      if (r.revisions[i]!.revision <= r.revisions[i - 1]!.revision) {
        throw new SnapshotError(
          `invalid registry snapshot: revisions of ${r.kind}/${r.name} are not increasing`,
        );
      }
    }
  }
  let ca: CaState | undefined;
  if (snap.ca !== undefined) {
    try {
      ca = parseCaState(snap.ca);
    } catch (e) {
      throw new SnapshotError(`invalid registry snapshot: ca: ${(e as Error).message}`);
    }
  }
  return {
    appliedIndex: snap.applied_index,
    index: snap.index,
    instances: snap.instances,
    resources: snap.resources,
    credentials: {
      ...(ca !== undefined ? { ca } : {}),
      join_tokens: snap.join_tokens,
      operator_tokens: snap.operator_tokens,
      revoked_operator_hashes: snap.revoked_operator_hashes,
      revoked_bootstrap_hashes: snap.revoked_bootstrap_hashes,
    },
  };
}
