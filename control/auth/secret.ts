/**
 * Token secrets: generation, hashing and constant-time comparison. Only hashes are stored.
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";

/** Random bytes in every token secret (256 bits). */
export const TOKEN_SECRET_BYTES = 32;
/** Longest `Authorization` header looked at; longer ones are refused unread. */
export const MAX_AUTH_HEADER_CHARS = 512;

/**
 * Prefix of every secret. The logger redacts `skn_…` values wherever they appear, so a token
 * pasted into a log field by mistake still does not leak.
 */
export const SECRET_PREFIX = "skn_";

/** Source of random bytes, injectable for deterministic tests. */
export type RandomBytes = (n: number) => Uint8Array;

/** The default source of randomness: Web Crypto. */
export const cryptoRandom: RandomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));

/** A new secret `skn_<kind>_<base64url of 32 random bytes>`. */
export function newSecret(kind: string, random: RandomBytes = cryptoRandom): string {
  return `${SECRET_PREFIX}${kind}_${Buffer.from(random(TOKEN_SECRET_BYTES)).toString("base64url")}`;
}

/** A short random id (hex) naming a token in listings; not secret. */
export function newTokenId(random: RandomBytes = cryptoRandom): string {
  return Buffer.from(random(8)).toString("hex");
}

/** Hex SHA-256 of a secret: what the stored records hold. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Compares two hex hashes in time independent of where they differ. */
export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  if (x.length !== y.length || x.length === 0) return false;
  return timingSafeEqual(x, y);
}

/**
 * Finds the record whose hash matches `secret`, comparing against every record (no early exit)
 * so timing says nothing about which or how many records exist.
 */
export function findByHash<T extends { readonly hash: string }>(
  records: readonly T[],
  secret: string,
): T | undefined {
  const h = hashSecret(secret);
  let found: T | undefined;
  for (const r of records) {
    if (hashesEqual(r.hash, h) && found === undefined) found = r;
  }
  return found;
}

/** The token of an `Authorization: Bearer <token>` header; null when absent or malformed. */
export function bearerToken(header: string | null | undefined): string | null {
  if (!header || header.length > MAX_AUTH_HEADER_CHARS) return null;
  const m = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)[ ]*$/i.exec(header);
  return m ? m[1]! : null;
}

/**
 * Records keyed by their hash, so a secret is found with one hash and one map probe instead of a
 * comparison against every record. Probing a map by SHA-256 says nothing useful through timing
 * (a caller cannot steer the hash of a guess); a hit is still confirmed in constant time.
 * Build one per record list: the replicated lists are replaced, never changed in place.
 */
export class HashIndex<T extends { readonly hash: string }> {
  /** The records indexed, as given. */
  readonly records: readonly T[];
  readonly #byHash = new Map<string, T>();

  /** Indexes `records`; with duplicate hashes the first record wins, as in {@linkcode findByHash}. */
  constructor(records: readonly T[]) {
    this.records = records;
    for (const r of records) if (!this.#byHash.has(r.hash)) this.#byHash.set(r.hash, r);
  }

  /** The record whose hash matches `secret`, or undefined. */
  find(secret: string): T | undefined {
    const h = hashSecret(secret);
    const r = this.#byHash.get(h);
    return r !== undefined && _sameString(r.hash, h) ? r : undefined;
  }
}

/**
 * Whether two strings of equal length are equal, in time independent of where they differ.
 * For the index's confirmation, where both sides are lowercase hex of the same length and the
 * hex decoding of {@linkcode hashesEqual} cost as much as the hash itself.
 */
function _sameString(a: string, b: string): boolean {
  if (a.length !== b.length || a.length === 0) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
