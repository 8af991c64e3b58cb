/**
 * What a control node sets up once for the cluster: the founding snapshot on a brand-new data
 * directory, the mesh CA a leader creates (or takes from the seed) when the replicated state has
 * none, and the node's bootstrap admin token. The last two are retried on every tick until the
 * state holds them, so a lost proposal or a leader change never leaves a cluster without them.
 * @module
 */
import { type Logger, nodeId } from "../../common/mod.ts";
import { isTrustDomain } from "../../common/tls/mod.ts";
import { MemoryStorage } from "../raft/storage.ts";
import type { ConfState } from "../raft/types.ts";
import {
  type ApplyResult,
  RegistryState,
  validateCommand,
  type ValidatedCommand,
} from "../registry/mod.ts";
import { type CaState, createCa } from "../ca/mod.ts";
import { BOOTSTRAP_TOKEN_ID_PREFIX } from "../auth/mod.ts";
import type { DurableLog } from "./durable_log.ts";
import { encodeSnapshotPayload, type MemberAddress } from "./envelope.ts";
import { hostPort } from "./membership.ts";
import type { Clock } from "./ports.ts";

/** Least time between two CA bootstrap attempts of a leader (each one generates a root key). */
export const CA_BOOTSTRAP_RETRY_MS = 2000;
/** How long a CA bootstrap proposal may wait for commit before the next attempt. */
export const CA_BOOTSTRAP_COMMIT_TIMEOUT_MS = 5000;
/** Least time between two attempts to register this node's bootstrap token. */
export const BOOTSTRAP_TOKEN_RETRY_MS = 1000;
/**
 * How long a follower waits after it first knows a leader before it registers its bootstrap
 * token itself: nodes usually share one file, and the leader registers that one at once.
 */
export const BOOTSTRAP_TOKEN_FOLLOWER_DELAY_MS = 2000;
/** How long a bootstrap token registration may wait for commit before the next attempt. */
export const BOOTSTRAP_TOKEN_COMMIT_TIMEOUT_MS = 5000;

/** The founders of a new cluster: the configured peers, or this node alone. */
export interface Founding {
  /** This node's id. */
  node: string;
  /** This node's Raft address (`host:port`), used when there are no peers. */
  raftAdvertise: string;
  /** The configured initial cluster. */
  peers: { id: string; hostname: string; port: number }[];
}

/**
 * The first state of a founding member. Every founder derives the same bootstrap snapshot from
 * the same peer list, so their logs agree at index 1.
 */
export function foundingStorage(f: Founding): { storage: MemoryStorage; conf: ConfState } {
  const founders = f.peers.length > 0 ? f.peers : [{ id: f.node, ...hostPort(f.raftAdvertise) }];
  const members: MemberAddress[] = founders
    .map((p) => ({ node: p.id, raft: `${p.hostname}:${p.port}`, api: null }))
    .sort((a, b) => (a.node < b.node ? -1 : 1));
  const conf: ConfState = { voters: founders.map((p) => nodeId(p.id)).sort(), learners: [] };
  const data = encodeSnapshotPayload(members, new RegistryState().snapshot());
  return { storage: MemoryStorage.bootstrap(conf, data), conf };
}

/** Writes a founding member's first snapshot and hard state, and returns its log view. */
export async function foundCluster(
  f: Founding,
  durable: DurableLog,
  log: Logger,
): Promise<MemoryStorage> {
  const { storage, conf } = foundingStorage(f);
  await durable.saveSnapshot(storage.snapshot());
  await durable.persist(storage.hardState(), []);
  log.info("bootstrapped a new cluster member", { voters: conf.voters.join(",") });
  return storage;
}

/** What {@linkcode Bootstrapper} reads and does through the node. */
export interface BootstrapDeps {
  /** This node's id. */
  node: string;
  /** Trust domain of the CA to create; null disables the CA bootstrap. */
  trustDomain: string | null;
  /** The CA seed to propose instead of a fresh CA. */
  seedCa?: CaState;
  /** Hex SHA-256 of this node's bootstrap admin token, or null. */
  tokenHash: string | null;
  /** The replicated registry as applied so far. */
  state(): RegistryState;
  /** This node's role as of the last Ready. */
  role(): string;
  /** The Raft core's role and leader right now. */
  raftStatus(): { role: string; leader: string | null };
  /** Whether the member table has an address for `id`. */
  hasMember(id: string): boolean;
  /** Proposes on the leader directly (the CA is only ever proposed by a leader). */
  proposeHere(cmd: ValidatedCommand, signal: AbortSignal): Promise<ApplyResult>;
  /** Proposes here or through the leader (the token may come from a follower). */
  propose(cmd: ValidatedCommand, signal: AbortSignal): Promise<ApplyResult>;
  /** Whether the node is closing. */
  closed(): boolean;
  /** Time and timers. */
  clock: Clock;
  /** Logger. */
  log: Logger;
}

/** Brings the cluster CA and this node's bootstrap token into the replicated state. */
export class Bootstrapper {
  readonly #d: BootstrapDeps;
  #caAttempt: Promise<void> | null = null;
  #caLastAttemptMs = -Infinity;
  #tokenAttempt: Promise<void> | null = null;
  #tokenLastAttemptMs = 0;
  #tokenFollowerSinceMs: number | null = null;

  /** Creates the bootstrapper; nothing happens before {@linkcode tick}. */
  constructor(deps: BootstrapDeps) {
    this.#d = deps;
  }

  /** Starts whichever attempt is due. */
  tick(): void {
    this.#maybeBootstrapCa();
    this.#maybeRegisterToken();
  }

  /**
   * Registers this node's bootstrap token hash as an admin operator token when the state lacks
   * it. A leader commits it itself; a follower forwards the proposal to the leader over the peer
   * link, so a node's file works without that node ever leading. A revoked hash is never
   * proposed again (the state remembers revocations), and a duplicate from a node that has not
   * yet applied the first registration is a harmless refusal.
   */
  #maybeRegisterToken(): void {
    const d = this.#d;
    const hash = d.tokenHash;
    if (!hash || d.closed() || this.#tokenAttempt) return;
    if (d.state().operatorTokenStatus(hash) !== "absent") return;
    const st = d.raftStatus();
    const now = d.clock.now();
    if (st.role !== "leader") {
      if (!st.leader || !d.hasMember(st.leader)) {
        this.#tokenFollowerSinceMs = null;
        return;
      }
      this.#tokenFollowerSinceMs ??= now;
      if (now - this.#tokenFollowerSinceMs < BOOTSTRAP_TOKEN_FOLLOWER_DELAY_MS) return;
    }
    if (now - this.#tokenLastAttemptMs < BOOTSTRAP_TOKEN_RETRY_MS) return;
    this.#tokenLastAttemptMs = now;
    this.#tokenAttempt = this.#registerToken(hash, now).finally(() => {
      this.#tokenAttempt = null;
    });
  }

  async #registerToken(hash: string, now: number): Promise<void> {
    const d = this.#d;
    try {
      const cmd = validateCommand({
        type: "put_operator_token",
        record: {
          id: `${BOOTSTRAP_TOKEN_ID_PREFIX}${hash.slice(0, 16)}`,
          name: `bootstrap ${d.node}`.slice(0, 64),
          role: "admin",
          hash,
          createdAt: now,
          expiresAt: null,
        },
      });
      const r = await d.propose(cmd, d.clock.timeout(BOOTSTRAP_TOKEN_COMMIT_TIMEOUT_MS));
      if (r.ok) {
        d.log.info("bootstrap admin token registered", {
          credential_id: `${BOOTSTRAP_TOKEN_ID_PREFIX}${hash.slice(0, 16)}`,
        });
      } else if (r.error.code !== "token_exists" && r.error.code !== "token_revoked") {
        d.log.warn("bootstrap token registration refused", {
          code: r.error.code,
          reason: r.error.message,
        });
      }
    } catch (e) {
      if (d.closed()) return;
      d.log.debug("bootstrap token registration did not commit; will retry", {
        reason: (e as Error).message,
      });
    }
  }

  /**
   * A leader whose state has no CA creates one and proposes the result (`put_ca` with
   * `expect_root_id: null`). Checked on every tick rather than once at election, so a failed or
   * lost proposal is simply tried again; the compare-and-set makes a proposal that raced an
   * earlier one (still unapplied in this leader's log) a harmless refusal.
   */
  #maybeBootstrapCa(): void {
    const d = this.#d;
    if (d.closed() || d.role() !== "leader" || this.#caAttempt || d.state().ca()) return;
    const td = d.trustDomain;
    if (td === null || !isTrustDomain(td)) return;
    const now = d.clock.now();
    if (now - this.#caLastAttemptMs < CA_BOOTSTRAP_RETRY_MS) return;
    this.#caLastAttemptMs = now;
    this.#caAttempt = this.#bootstrapCa(td, now).finally(() => {
      this.#caAttempt = null;
    });
  }

  async #bootstrapCa(trustDomain: string, now: number): Promise<void> {
    const d = this.#d;
    try {
      const seed = d.seedCa;
      if (seed && seed.trustDomain !== trustDomain) {
        d.log.error("CA seed is for another trust domain; not proposing it", {
          seed_trust_domain: seed.trustDomain,
          trust_domain: trustDomain,
        });
        return;
      }
      // With a seed, the cluster CA is the seed, so the leaves nodes issued from it before
      // Raft ran stay valid.
      const ca = seed ?? await createCa({ trustDomain, now });
      if (d.closed() || d.role() !== "leader" || d.state().ca()) return;
      const cmd = validateCommand({ type: "put_ca", ca, expect_root_id: null });
      const r = await d.proposeHere(cmd, d.clock.timeout(CA_BOOTSTRAP_COMMIT_TIMEOUT_MS));
      if (r.ok && r.value.type === "put_ca") {
        d.log.info("certificate authority created", {
          source: seed ? "seed" : "generated",
          trust_domain: trustDomain,
          root: r.value.activeRootId,
        });
      } else if (!r.ok && r.error.code !== "ca_exists") {
        d.log.warn("CA bootstrap refused", { code: r.error.code, reason: r.error.message });
      }
    } catch (e) {
      if (d.closed()) return;
      d.log.warn("CA bootstrap did not commit; will retry", { reason: (e as Error).message });
    }
  }
}
