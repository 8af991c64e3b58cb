/**
 * Registry commands: the entries the control cluster replicates through Raft.
 *
 * A command is plain JSON so every node decodes the same bytes to the same value; decoding
 * validates with zod because a log entry is outside bytes (disk, network).
 * @module
 */
import { z } from "zod";
import {
  type Health,
  HealthSchema,
  type Instance,
  InstanceSchema,
  NameSchema,
} from "./instance.ts";
import { JOIN_TOKEN_USES_MAX, ROLES } from "../auth/mod.ts";

/** Most health changes committed in one `set_health` command. */
export const MAX_HEALTH_CHANGES_PER_COMMAND = 1000;
/** Most resources written by one `put_resource` command (one `PUT /v1/resources`). */
export const MAX_RESOURCES_PER_COMMAND = 100;
/** Longest resource kind name. */
export const MAX_KIND_LENGTH = 64;

/** A resource kind such as `Policy`. */
export const KindSchema = z
  .string()
  .min(1)
  .max(MAX_KIND_LENGTH)
  .regex(/^[A-Za-z][A-Za-z0-9]*$/, "expected a kind like Policy or RateLimit");

/**
 * A resource as the registry stores it: kind and name are lifted out for indexing; `resource`
 * is the whole validated document (including `kind`). The registry does not re-validate the
 * document against the resource schemas, so a node running a newer schema applies the same log
 * the same way as an older one.
 */
export const StoredResourceSchema = z.strictObject({
  kind: KindSchema,
  name: NameSchema,
  resource: z.record(z.string(), z.unknown()),
});
/** A resource as the registry stores it. */
export type StoredResource = z.infer<typeof StoredResourceSchema>;

/** One health change of a `set_health` batch. */
export const HealthChangeSchema = z.strictObject({
  service: NameSchema,
  id: NameSchema,
  health: HealthSchema,
});
/** One health change of a `set_health` batch. */
export type HealthChange = z.infer<typeof HealthChangeSchema>;

/** Longest operator note on a revocation. */
export const MAX_REVOKE_REASON_LENGTH = 256;

/** A join token as replicated: the hash of its secret, never the secret. */
export const JoinTokenRecordSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  service: NameSchema,
  kind: z.literal("gateway").optional(),
  hash: z.string().regex(/^[0-9a-f]{64}$/, "expected a hex SHA-256"),
  createdAt: z.number().int().min(0),
  expiresAt: z.number().int().min(0),
  uses: z.number().int().min(1).max(JOIN_TOKEN_USES_MAX),
  usesLeft: z.number().int().min(0).max(JOIN_TOKEN_USES_MAX),
});

/** An operator bearer token as replicated: the hash of its secret, never the secret. */
export const OperatorTokenRecordSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/),
  role: z.enum(ROLES),
  hash: z.string().regex(/^[0-9a-f]{64}$/, "expected a hex SHA-256"),
  createdAt: z.number().int().min(0),
  expiresAt: z.number().int().min(0).nullable(),
});

/** Every command the registry state machine applies. */
export const RegistryCommandSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("register_instance"),
    instance: InstanceSchema,
    /** Set when a proxy registers: the most instances its service may then hold. */
    identity_quota: z.number().int().min(1).max(1_000_000).optional(),
  }),
  z.strictObject({ type: z.literal("deregister_instance"), service: NameSchema, id: NameSchema }),
  z.strictObject({
    type: z.literal("set_health"),
    changes: z.array(HealthChangeSchema).min(1).max(MAX_HEALTH_CHANGES_PER_COMMAND),
  }),
  z.strictObject({
    type: z.literal("put_resource"),
    // A list so that one `ctl apply` of a multi-document file commits all or nothing.
    items: z.array(StoredResourceSchema).min(1).max(MAX_RESOURCES_PER_COMMAND),
  }),
  z.strictObject({ type: z.literal("delete_resource"), kind: KindSchema, name: NameSchema }),
  z.strictObject({
    type: z.literal("rollback_resource"),
    kind: KindSchema,
    name: NameSchema,
    revision: z.number().int().min(1),
  }),
  z.strictObject({
    type: z.literal("put_ca"),
    // The whole CaState (checked by parseCaState at apply): key generation is not
    // deterministic, so the leader proposes the result, not the operation.
    ca: z.record(z.string(), z.unknown()),
    // Compare-and-set on the active root: null means "only if there is no CA yet", so two
    // leaders of successive terms bootstrapping at once cannot replace each other's CA.
    expect_root_id: z.string().max(128).nullable(),
    // Compare-and-set on the whole CA state (`caDigest`): a change computed from a state that
    // has moved on since (another rotation step, a revocation) is refused, not applied over it.
    expect_digest: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  }),
  z.strictObject({ type: z.literal("create_join_token"), record: JoinTokenRecordSchema }),
  z.strictObject({
    type: z.literal("consume_join_token"),
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    // The leader's clock when it accepted the redeem: apply must not read a clock.
    now: z.number().int().min(0),
  }),
  z.strictObject({ type: z.literal("put_operator_token"), record: OperatorTokenRecordSchema }),
  z.strictObject({
    type: z.literal("revoke_operator_token"),
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  }),
  z.strictObject({
    type: z.literal("revoke_identity"),
    spiffe_id: z.string().min(1).max(512),
    now: z.number().int().min(0),
    reason: z.string().max(MAX_REVOKE_REASON_LENGTH).default(""),
  }),
]);
/** Every command the registry state machine applies. */
export type RegistryCommand = z.infer<typeof RegistryCommandSchema>;
/** The `type` tag of a registry command. */
export type RegistryCommandType = RegistryCommand["type"];

/** Thrown by {@linkcode decodeCommand} when bytes are not a valid command. */
export class CommandDecodeError extends Error {
  /** Creates the error; `path` is the zod field path of the first issue, if any. */
  constructor(message: string, readonly path: string) {
    super(message);
    this.name = "CommandDecodeError";
  }
}

const _encoder = new TextEncoder();
const _decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes a command as UTF-8 JSON, the payload of a Raft entry. */
export function encodeCommand(cmd: RegistryCommand): Uint8Array {
  return _encoder.encode(JSON.stringify(cmd));
}

declare const _validated: unique symbol;

/**
 * A command that went through {@linkcode RegistryCommandSchema} (defaults filled in), so the
 * state machine may apply it without validating again. Only {@linkcode decodeCommand} and
 * {@linkcode validateCommand} produce one; the brand exists only in the type system.
 */
export type ValidatedCommand = RegistryCommand & { readonly [_validated]: true };

/** Validates a value as a command; throws {@linkcode CommandDecodeError}. */
export function validateCommand(raw: unknown): ValidatedCommand {
  const parsed = RegistryCommandSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue ? issue.path.map(String).join(".") : "";
    throw new CommandDecodeError(
      `invalid registry command at ${path || "(root)"}: ${issue?.message ?? "invalid"}`,
      path,
    );
  }
  return parsed.data as ValidatedCommand;
}

/** Decodes and validates a Raft entry payload; throws {@linkcode CommandDecodeError}. */
export function decodeCommand(bytes: Uint8Array): ValidatedCommand {
  let raw: unknown;
  try {
    raw = JSON.parse(_decoder.decode(bytes));
  } catch (e) {
    throw new CommandDecodeError(`registry command is not UTF-8 JSON: ${(e as Error).message}`, "");
  }
  return validateCommand(raw);
}

const _HEALTH: ReadonlySet<unknown> = new Set<Health>(HealthSchema.options);

function _isStr(v: unknown): v is string {
  return typeof v === "string";
}

function _isStrArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every(_isStr);
}

/**
 * Rebuilds an instance from its known fields after a check of their types only (lengths and
 * name patterns were checked by the leader); throws on any mismatch. The copy leaves behind
 * any key the schema does not know, so nothing unexpected reaches the catalog.
 */
function _committedInstance(v: unknown): Instance {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
  const o = v as Record<string, unknown>;
  const { id, service, node, address, port, zone, version, weight, tags, capabilities, meta } = o;
  if (
    !_isStr(id) || !_isStr(service) || !_isStr(node) || !_isStr(address) || !_isStr(zone) ||
    !_isStr(version) || !Number.isInteger(port) || !Number.isInteger(weight) ||
    !_isStrArray(tags) || !_isStrArray(capabilities) || !_HEALTH.has(o.health) ||
    typeof meta !== "object" || meta === null || Array.isArray(meta) ||
    !Object.values(meta).every(_isStr)
  ) {
    throw new Error("an instance field has the wrong type");
  }
  return {
    id,
    service,
    node,
    address,
    port: port as number,
    zone,
    version,
    weight: weight as number,
    tags,
    capabilities,
    meta: { ...(meta as Record<string, string>) },
    health: o.health as Health,
  };
}

/**
 * Decodes the payload of a committed Raft entry, for nodes that did not propose it.
 *
 * The leader validated the command with {@linkcode validateCommand} before proposing it and
 * the WAL and transport checksum its bytes, so the frequent kinds (`register_instance`,
 * `deregister_instance`) get a structural check only: JSON, the right keys with the right
 * types, rebuilt field by field. That is enough that a damaged or foreign entry is refused (and
 * skipped identically on every node) instead of putting a malformed value into the state, at a
 * fraction of the cost of the schema, which on a follower was most of the work of applying an
 * entry. Every other kind is rare and goes through the full schema. Throws
 * {@linkcode CommandDecodeError}.
 */
export function decodeCommittedCommand(bytes: Uint8Array): ValidatedCommand {
  let raw: unknown;
  try {
    raw = JSON.parse(_decoder.decode(bytes));
  } catch (e) {
    throw new CommandDecodeError(`registry command is not UTF-8 JSON: ${(e as Error).message}`, "");
  }
  if (typeof raw !== "object" || raw === null) return validateCommand(raw);
  const o = raw as Record<string, unknown>;
  if (o.type === "register_instance") {
    let instance: Instance;
    try {
      instance = _committedInstance(o.instance);
    } catch (e) {
      throw new CommandDecodeError(
        `invalid committed register_instance: ${(e as Error).message}`,
        "instance",
      );
    }
    return { type: "register_instance", instance } as ValidatedCommand;
  }
  if (o.type === "deregister_instance") {
    if (!_isStr(o.service) || !_isStr(o.id)) {
      throw new CommandDecodeError("invalid committed deregister_instance", "");
    }
    return { type: "deregister_instance", service: o.service, id: o.id } as ValidatedCommand;
  }
  return validateCommand(raw);
}
