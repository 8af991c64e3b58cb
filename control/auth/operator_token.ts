/**
 * Operator bearer tokens with roles `admin` ⊃ `operator` ⊃ `read`, stored only as hashes.
 * @module
 */
import {
  bearerToken,
  findByHash,
  type HashIndex,
  hashSecret,
  newSecret,
  newTokenId,
  type RandomBytes,
} from "./secret.ts";

/** Operator roles, least privileged first. */
export const ROLES = ["read", "operator", "admin"] as const;

/** An operator role. */
export type Role = typeof ROLES[number];

/** Kind tag in operator token secrets: `skn_op_…`. */
export const OPERATOR_TOKEN_KIND = "op";
/** Most operator tokens kept. */
export const MAX_OPERATOR_TOKENS = 1_000;

/** Whether `s` names a role. */
export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

/** Whether a holder of role `have` may do what needs `need` (admin ⊃ operator ⊃ read). */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/**
 * Id prefix of the admin tokens control nodes register from their `bootstrap_token_file`
 * (`boot-` and 16 hex digits of the hash). Ids of tokens made through the API are 16 hex digits,
 * so the prefix tells the two apart.
 */
export const BOOTSTRAP_TOKEN_ID_PREFIX = "boot-";

/** A stored operator token: only the hash of the secret. */
export interface OperatorTokenRecord {
  /** Short public id. */
  readonly id: string;
  /** Who or what holds it ("bootstrap", "ci"). */
  readonly name: string;
  /** Its role. */
  readonly role: Role;
  /** Hex SHA-256 of the secret. */
  readonly hash: string;
  /** Creation time, ms since the epoch. */
  readonly createdAt: number;
  /** Expiry, ms since the epoch, or null for none. */
  readonly expiresAt: number | null;
}

/** Options of {@linkcode createOperatorToken}. */
export interface CreateOperatorTokenOptions {
  /** Holder's name. */
  name: string;
  /** Role granted. */
  role: Role;
  /** Current time, ms since the epoch. */
  now: number;
  /** Lifetime; omitted means no expiry (the bootstrap admin token). */
  ttlMs?: number;
  /** Randomness. @default Web Crypto */
  random?: RandomBytes;
}

/** Creates an operator token; the secret is returned once and never stored. */
export function createOperatorToken(
  opts: CreateOperatorTokenOptions,
): { secret: string; record: OperatorTokenRecord } {
  if (!isRole(opts.role)) throw new RangeError(`unknown role ${JSON.stringify(opts.role)}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/.test(opts.name)) {
    throw new RangeError(`invalid token name ${JSON.stringify(opts.name)}`);
  }
  if (opts.ttlMs !== undefined && !(Number.isInteger(opts.ttlMs) && opts.ttlMs > 0)) {
    throw new RangeError(`operator token ttl must be a positive integer, got ${opts.ttlMs}`);
  }
  const secret = newSecret(OPERATOR_TOKEN_KIND, opts.random);
  return {
    secret,
    record: {
      id: newTokenId(opts.random),
      name: opts.name,
      role: opts.role,
      hash: hashSecret(secret),
      createdAt: opts.now,
      expiresAt: opts.ttlMs === undefined ? null : opts.now + opts.ttlMs,
    },
  };
}

/** Adds a record, refusing beyond {@linkcode MAX_OPERATOR_TOKENS}. */
export function addOperatorToken(
  records: readonly OperatorTokenRecord[],
  record: OperatorTokenRecord,
): OperatorTokenRecord[] {
  if (records.length >= MAX_OPERATOR_TOKENS) {
    throw new RangeError(`too many operator tokens (${MAX_OPERATOR_TOKENS})`);
  }
  return [...records, record];
}

/** Deletes the token `id`. */
export function deleteOperatorToken(
  records: readonly OperatorTokenRecord[],
  id: string,
): OperatorTokenRecord[] {
  return records.filter((r) => r.id !== id);
}

/** Outcome of {@linkcode authenticate}. */
export type AuthResult =
  | { readonly ok: true; readonly record: OperatorTokenRecord }
  | { readonly ok: false; readonly reason: "missing" | "malformed" | "unknown" | "expired" };

/**
 * Authenticates an `Authorization` header value against the stored hashes: with a record list,
 * every record is compared in constant time (no early exit); with a {@linkcode HashIndex} of
 * the list, one map probe by hash and a constant-time confirmation (the API's hot path).
 */
export function authenticate(
  records: readonly OperatorTokenRecord[] | HashIndex<OperatorTokenRecord>,
  header: string | null | undefined,
  now: number,
): AuthResult {
  if (header === null || header === undefined || header === "") {
    return { ok: false, reason: "missing" };
  }
  const token = bearerToken(header);
  if (!token) return { ok: false, reason: "malformed" };
  const rec = Array.isArray(records)
    ? findByHash(records as readonly OperatorTokenRecord[], token)
    : (records as HashIndex<OperatorTokenRecord>).find(token);
  if (!rec) return { ok: false, reason: "unknown" };
  if (rec.expiresAt !== null && now >= rec.expiresAt) return { ok: false, reason: "expired" };
  return { ok: true, record: rec };
}

/** A record without its hash, for listings. */
export function publicOperatorToken(r: OperatorTokenRecord): Omit<OperatorTokenRecord, "hash"> {
  const { hash: _h, ...rest } = r;
  return rest;
}
