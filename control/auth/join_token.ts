/**
 * Join tokens: one-time (or n-time) secrets a proxy presents to obtain its first certificate
 * for one service. Pure functions over a JSON-serializable list of records.
 * @module
 */
import { findByHash, hashSecret, newSecret, newTokenId, type RandomBytes } from "./secret.ts";

/** Longest lifetime of a join token. */
export const JOIN_TOKEN_TTL_MS_MAX = 7 * 24 * 3_600_000;
/** Most uses one join token may allow. */
export const JOIN_TOKEN_USES_MAX = 10_000;
/** Most join token records kept; creation beyond it is refused. */
export const MAX_JOIN_TOKENS = 10_000;
/** How long a spent or expired record is kept, so a late reuse reads "used up"/"expired". */
export const JOIN_TOKEN_RETENTION_MS = 24 * 3_600_000;

/** Kind tag in join token secrets: `skn_join_…`. */
export const JOIN_TOKEN_KIND = "join";

/** A stored join token: only the hash of the secret. */
export interface JoinTokenRecord {
  /** Short public id, for listing and deleting. */
  readonly id: string;
  /** The service (or, with `kind: "gateway"`, the gateway) whose identity the token grants. */
  readonly service: string;
  /** `gateway`: the token grants `gateway/<service>` (an ingress gateway), not a service. */
  readonly kind?: "gateway";
  /** Hex SHA-256 of the secret. */
  readonly hash: string;
  /** Creation time, ms since the epoch. */
  readonly createdAt: number;
  /** Expiry, ms since the epoch. */
  readonly expiresAt: number;
  /** Uses granted at creation. */
  readonly uses: number;
  /** Uses remaining. */
  readonly usesLeft: number;
}

/** Options of {@linkcode createJoinToken}. */
export interface CreateJoinTokenOptions {
  /** Service the token grants (or the gateway, with `gateway`). */
  service: string;
  /** The token grants the gateway identity `gateway/<service>`. @default false */
  gateway?: boolean;
  /** Lifetime in ms (1 ms to {@linkcode JOIN_TOKEN_TTL_MS_MAX}). */
  ttlMs: number;
  /** Number of uses. @default 1 */
  uses?: number;
  /** Current time, ms since the epoch. */
  now: number;
  /** Randomness. @default Web Crypto */
  random?: RandomBytes;
}

/** Whether a string looks like a join token secret (routing only; proves nothing). */
export function isJoinTokenSecret(s: string): boolean {
  return s.startsWith(`skn_${JOIN_TOKEN_KIND}_`);
}

/**
 * Creates a join token. `secret` is shown to the operator once and never stored; `record` is
 * what gets replicated.
 */
export function createJoinToken(
  opts: CreateJoinTokenOptions,
): { secret: string; record: JoinTokenRecord } {
  const uses = opts.uses ?? 1;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(opts.service)) {
    throw new RangeError(`invalid service name ${JSON.stringify(opts.service)}`);
  }
  if (!Number.isInteger(opts.ttlMs) || opts.ttlMs < 1 || opts.ttlMs > JOIN_TOKEN_TTL_MS_MAX) {
    throw new RangeError(`join token ttl ${opts.ttlMs}ms is outside [1, ${JOIN_TOKEN_TTL_MS_MAX}]`);
  }
  if (!Number.isInteger(uses) || uses < 1 || uses > JOIN_TOKEN_USES_MAX) {
    throw new RangeError(`join token uses ${uses} is outside [1, ${JOIN_TOKEN_USES_MAX}]`);
  }
  const secret = newSecret(JOIN_TOKEN_KIND, opts.random);
  return {
    secret,
    record: {
      id: newTokenId(opts.random),
      service: opts.service,
      ...(opts.gateway === true ? { kind: "gateway" as const } : {}),
      hash: hashSecret(secret),
      createdAt: opts.now,
      expiresAt: opts.now + opts.ttlMs,
      uses,
      usesLeft: uses,
    },
  };
}

/** Adds a record, refusing beyond {@linkcode MAX_JOIN_TOKENS}. */
export function addJoinToken(
  records: readonly JoinTokenRecord[],
  record: JoinTokenRecord,
): JoinTokenRecord[] {
  if (records.length >= MAX_JOIN_TOKENS) {
    throw new RangeError(`too many join tokens (${MAX_JOIN_TOKENS}); delete or prune some`);
  }
  return [...records, record];
}

/** Why a join token was refused. */
export type RedeemRefusal = "unknown" | "expired" | "used_up";

/** Outcome of {@linkcode redeem} / {@linkcode consumeJoinToken}. */
export type RedeemResult =
  | {
    readonly ok: true;
    /** The record after this use. */
    readonly record: JoinTokenRecord;
    /** Uses remaining after this one. */
    readonly usesLeft: number;
    /** The whole list after this use: the new state to replicate. */
    readonly records: JoinTokenRecord[];
  }
  | { readonly ok: false; readonly reason: RedeemRefusal };

/**
 * Redeems a secret: finds its record (constant-time comparison), refuses it when unknown,
 * expired or used up, and otherwise spends one use.
 */
export function redeem(
  records: readonly JoinTokenRecord[],
  secret: string,
  now: number,
): RedeemResult {
  const rec = findByHash(records, secret);
  if (!rec) return { ok: false, reason: "unknown" };
  return consumeJoinToken(records, rec.id, now);
}

/**
 * Spends one use of the token `id`. Deterministic, so it is also the Raft apply step: the
 * leader checks with {@linkcode redeem}, proposes `{ id }`, and every node applies this; the
 * applied result is authoritative (two concurrent redeems of a single-use token: one wins).
 */
export function consumeJoinToken(
  records: readonly JoinTokenRecord[],
  id: string,
  now: number,
): RedeemResult {
  const i = records.findIndex((r) => r.id === id);
  const rec = records[i];
  if (!rec) return { ok: false, reason: "unknown" };
  if (now >= rec.expiresAt) return { ok: false, reason: "expired" };
  if (rec.usesLeft <= 0) return { ok: false, reason: "used_up" };
  const next: JoinTokenRecord = { ...rec, usesLeft: rec.usesLeft - 1 };
  const out = [...records];
  out[i] = next;
  return { ok: true, record: next, usesLeft: next.usesLeft, records: out };
}

/** The identity a join token record grants. */
export function joinTokenIdentity(
  r: Pick<JoinTokenRecord, "service" | "kind">,
): { kind: "service"; service: string } | { kind: "gateway"; gateway: string } {
  return r.kind === "gateway"
    ? { kind: "gateway", gateway: r.service }
    : { kind: "service", service: r.service };
}

/** Deletes the token `id` (an operator revoking it). */
export function deleteJoinToken(
  records: readonly JoinTokenRecord[],
  id: string,
): JoinTokenRecord[] {
  return records.filter((r) => r.id !== id);
}

/**
 * Drops records expired for longer than `retentionMs` (kept that long so a late reuse is told
 * "expired" rather than "unknown"). Spent records live until then too: their expiry bounds
 * them. Deterministic given `now`, so it can be applied on every node.
 */
export function pruneJoinTokens(
  records: readonly JoinTokenRecord[],
  now: number,
  retentionMs = JOIN_TOKEN_RETENTION_MS,
): JoinTokenRecord[] {
  return records.filter((r) => now < r.expiresAt + retentionMs);
}

/** A record without its hash, for listings. */
export function publicJoinToken(r: JoinTokenRecord): Omit<JoinTokenRecord, "hash"> {
  const { hash: _h, ...rest } = r;
  return rest;
}
