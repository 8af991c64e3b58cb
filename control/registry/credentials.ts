/**
 * The credentials part of the registry: the replicated CA (private keys included: never
 * served), join token records and operator token hashes, with the hashes of revoked operator
 * and bootstrap tokens remembered so they are never accepted again.
 * @module
 */
import {
  caDigest,
  type CaState,
  distrustedIntermediatePems,
  parseCaState,
  revokeIdentity,
  trustBundle,
} from "../ca/mod.ts";
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
import { type ApplyResult, deepFreeze, fail, type StateIndexes } from "./apply_result.ts";

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

/** The credential records of a snapshot; each present only when not empty. */
export interface CredentialFields {
  /** The CA state. */
  ca?: CaState;
  /** Join token records. */
  join_tokens?: readonly JoinTokenRecord[];
  /** Operator token records. */
  operator_tokens?: readonly OperatorTokenRecord[];
  /** Hashes of revoked operator tokens. */
  revoked_operator_hashes?: readonly string[];
  /** Hashes of revoked bootstrap tokens. */
  revoked_bootstrap_hashes?: readonly string[];
}

/** The CA and the token records, applied deterministically. */
export class Credentials {
  #ca: CaState | null = null;
  #joinTokens: readonly JoinTokenRecord[] = [];
  #operatorTokens: readonly OperatorTokenRecord[] = [];
  #revokedOperatorHashes: readonly string[] = [];
  #revokedBootstrapHashes: readonly string[] = [];
  readonly #at: StateIndexes;

  /** Creates empty credentials that move `at.catalog` when what proxies trust changes. */
  constructor(at: StateIndexes) {
    this.#at = at;
  }

  /** Stores a new CA state, compare-and-set on the active root (and digest when given). */
  putCa(
    index: number,
    raw: unknown,
    expectRootId: string | null,
    expectDigest: string | undefined,
  ): ApplyResult {
    const current = this.#ca?.activeRootId ?? null;
    if (expectDigest !== undefined && caDigest(this.#ca) !== expectDigest) {
      return fail(
        index,
        "ca_conflict",
        "the CA changed since this change was computed (another rotation step or a revocation); " +
          "read it again and retry",
      );
    }
    if (current !== expectRootId) {
      return expectRootId === null
        ? fail(index, "ca_exists", "the cluster already has a CA")
        : fail(
          index,
          "ca_conflict",
          `expected active root ${expectRootId}, the CA has ${current ?? "none"}`,
        );
    }
    let ca: CaState;
    try {
      ca = parseCaState(raw);
    } catch (e) {
      return fail(index, "invalid_ca", (e as Error).message);
    }
    this.#ca = deepFreeze(ca);
    // The trust bundle is part of what proxies follow, so a CA change moves the catalog index.
    this.#at.catalog = index;
    return { ok: true, index, value: { type: "put_ca", activeRootId: ca.activeRootId } };
  }

  /** Adds a join token record, pruning long-expired ones at the command's time. */
  createJoinToken(index: number, record: JoinTokenRecord): ApplyResult {
    if (this.#joinTokens.some((r) => r.id === record.id || r.hash === record.hash)) {
      return fail(index, "token_exists", `join token ${record.id} already exists`);
    }
    // Pruned with the creation time carried in the command, so every node drops the same ones.
    let next: JoinTokenRecord[];
    try {
      next = addJoinToken(pruneJoinTokens(this.#joinTokens, record.createdAt), record);
    } catch (e) {
      return fail(index, "too_many_tokens", (e as Error).message);
    }
    this.#joinTokens = deepFreeze(next);
    return { ok: true, index, value: { type: "create_join_token", id: record.id } };
  }

  /** Spends one use of a join token at the command's time. */
  consumeJoinToken(index: number, id: string, now: number): ApplyResult {
    const r = consumeJoinToken(this.#joinTokens, id, now);
    if (!r.ok) {
      const msg = r.reason === "unknown"
        ? "join token is not known (never created, deleted, or pruned)"
        : r.reason === "expired"
        ? `join token ${id} has expired`
        : `join token ${id} has no uses left`;
      return fail(index, `join_token_${r.reason}`, msg);
    }
    this.#joinTokens = deepFreeze(r.records);
    return {
      ok: true,
      index,
      value: { type: "consume_join_token", id, service: r.record.service, usesLeft: r.usesLeft },
    };
  }

  /** Adds an operator token record (its hash), unless that hash was revoked. */
  putOperatorToken(index: number, record: OperatorTokenRecord): ApplyResult {
    if (this.#isRevokedHash(record.hash)) {
      return fail(index, "token_revoked", `operator token ${record.id} was revoked`);
    }
    if (this.#operatorTokens.some((r) => r.id === record.id || r.hash === record.hash)) {
      return fail(index, "token_exists", `operator token ${record.id} already exists`);
    }
    // Expired records go with the creation time carried in the command: same on every node.
    const live = this.#operatorTokens.filter((r) =>
      r.expiresAt === null || r.expiresAt > record.createdAt
    );
    let next: OperatorTokenRecord[];
    try {
      next = addOperatorToken(live, record);
    } catch (e) {
      return fail(index, "too_many_tokens", (e as Error).message);
    }
    this.#operatorTokens = deepFreeze(next);
    return { ok: true, index, value: { type: "put_operator_token", id: record.id } };
  }

  /** Removes an operator token and remembers its hash as revoked. */
  revokeOperatorToken(index: number, id: string): ApplyResult {
    const rec = this.#operatorTokens.find((r) => r.id === id);
    if (!rec) return fail(index, "not_found", `no operator token ${id}`);
    this.#operatorTokens = deepFreeze(deleteOperatorToken(this.#operatorTokens, id));
    if (rec.id.startsWith(BOOTSTRAP_TOKEN_ID_PREFIX)) {
      this.#revokedBootstrapHashes = deepFreeze(
        [...this.#revokedBootstrapHashes, rec.hash].slice(-MAX_REVOKED_BOOTSTRAP_HASHES),
      );
    } else {
      this.#revokedOperatorHashes = deepFreeze(
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

  /** Adds a SPIFFE id to the CA's revocation list. */
  revokeIdentity(index: number, spiffeId: string, now: number, reason: string): ApplyResult {
    if (!this.#ca) return fail(index, "no_ca", "the cluster has no CA yet");
    let next: CaState;
    try {
      next = revokeIdentity(this.#ca, spiffeId, { now, reason });
    } catch (e) {
      return fail(index, "invalid_identity", (e as Error).message);
    }
    const changed = next !== this.#ca;
    if (changed) {
      this.#ca = deepFreeze(next);
      this.#at.catalog = index;
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

  /** What proxies trust and refuse: the CA roots and the revoked SPIFFE ids. */
  trust(): { roots: string[]; revoked: string[]; distrusted: string[] } {
    const ca = this.ca();
    if (!ca) return { roots: [], revoked: [], distrusted: [] };
    return {
      roots: trustBundle(ca),
      revoked: ca.revoked.map((r) => r.spiffeId),
      // Expired ones are left in until the next CA change drops them: nothing chains through.
      distrusted: distrustedIntermediatePems(ca),
    };
  }

  /** The records as a snapshot writes them; empty ones left out, so old layouts stay. */
  snapshotFields(): CredentialFields {
    return {
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
  }

  /** Takes the records of a checked snapshot (the CA already parsed). */
  load(f: CredentialFields): void {
    if (f.ca !== undefined) this.#ca = deepFreeze(f.ca);
    this.#joinTokens = deepFreeze(f.join_tokens ?? []);
    this.#operatorTokens = deepFreeze(f.operator_tokens ?? []);
    this.#revokedOperatorHashes = deepFreeze(f.revoked_operator_hashes ?? []);
    this.#revokedBootstrapHashes = deepFreeze(f.revoked_bootstrap_hashes ?? []);
  }
}
