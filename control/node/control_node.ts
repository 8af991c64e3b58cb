/**
 * The control node driver: the one place where the pure Raft core meets disk, network, clock
 * and the registry. It persists each Ready, then sends, then applies (etcd's order), and
 * implements the API's {@linkcode ControlBackend}.
 * @module
 */
import { type Logger, type NodeId, nodeId } from "../../common/mod.ts";
import { decodeConfChange, decodeMessage, encodeMessage } from "../raft/codec.ts";
import { RaftNode } from "../raft/node.ts";
import { MemoryStorage } from "../raft/storage.ts";
import type { ConfChange, ConfState, Entry, Message, ProposeResult, Ready } from "../raft/types.ts";
import {
  type ApplyResult,
  decodeCommand,
  decodeCommittedCommand,
  encodeCommand,
  encodeSnapshotYielding,
  IndexWatcher,
  LeaseTracker,
  MAX_HEALTH_CHANGES_PER_COMMAND,
  RegistryState,
  validateCommand,
  type ValidatedCommand,
} from "../registry/mod.ts";
import {
  type CaState,
  createCa,
  instanceMember,
  isRevoked,
  type RotationPolicy,
  type TrustReport,
} from "../ca/mod.ts";
import {
  defaultRotationPolicy,
  RotationDriver,
  type RotationStatus,
} from "./ca_rotation_driver.ts";
import type { ControlIdentity } from "../tls/mod.ts";
import { BOOTSTRAP_TOKEN_ID_PREFIX, type ForwardedCaller } from "../auth/mod.ts";
import { isTrustDomain } from "../../common/tls/mod.ts";
import {
  BackendError,
  type ControlBackend,
  type HealthInfo,
  type HeartbeatItem,
  type Member,
  NoQuorumError,
  NotLeaderError,
  type WriteForwardStats,
} from "../api/backend.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  spiffeControlAuthorizer,
  tlsDialer,
  tlsListenerFactory,
  Transport,
} from "../transport/mod.ts";
import { DurableLog } from "./durable_log.ts";
import { DataDirLock } from "../storage/dir_lock.ts";
import {
  decodeMemberEntry,
  decodeSnapshotPayload,
  encodeMemberEntry,
  encodeSnapshotPayload,
  FRAME_ANNOUNCE,
  FRAME_RAFT,
  isMemberEntry,
  type MemberAddress,
} from "./envelope.ts";
import {
  decodeForwardRequest,
  decodeForwardResult,
  encodeForwardRequest,
  encodeForwardResult,
  FORWARD_TIMEOUT_MS,
  type ForwardOutcome,
  forwardRefusal,
  ForwardTable,
  FRAME_FORWARD,
  FRAME_FORWARD_RESULT,
} from "./forward.ts";

/** Frames queued per peer before the transport drops (Raft retransmits what is lost). */
export const PEER_QUEUE_FRAMES = 4096;
/** How often a node tells its peers its API URL. */
export const ANNOUNCE_INTERVAL_MS = 1000;
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
/** How often the leader turns missed heartbeats into committed health changes. */
export const LEASE_CHECK_INTERVAL_MS = 500;
/** Proposals waiting for commit at once; more are refused as overload. */
export const MAX_PENDING_PROPOSALS = 65_536;
/** The Ready loop waiting this long on one step is logged as a stall. */
export const STALL_WARN_MS = 2000;
/** A learner is promoted once it is within this many entries of the leader. */
export const LEARNER_CATCHUP_LAG = 64;

/** Options of {@linkcode ControlNode.start}. */
export interface ControlNodeOptions {
  /** This node's id. */
  node: string;
  /** Directory for the WAL and snapshots. */
  dataDir: string;
  /** Raft listen address. */
  raftListen: { hostname: string; port: number };
  /** Raft address others dial (`advertise:port`). */
  raftAdvertise: string;
  /** Base URL of this node's API, for forwarding. */
  apiUrl: string;
  /** The initial cluster (`id` → `host:port`); empty for a single node. */
  peers: { id: string; hostname: string; port: number }[];
  /** Start with no membership and wait to be added by a running cluster. */
  join: boolean;
  /** Cluster id checked in transport hellos (the trust domain). */
  clusterId: string;
  /** Milliseconds per Raft tick (the heartbeat interval). */
  tickMs: number;
  /** Election timeout in ticks. */
  electionTicks: number;
  /** Applied entries between snapshots. */
  snapshotEvery: number;
  /** Heartbeat lease TTL of service instances. */
  leaseTtlMs?: number;
  /** Random source for Raft timeouts. @default Math.random */
  random?: () => number;
  /**
   * Trust domain of the mesh CA a leader creates when the replicated state has none; null
   * disables the bootstrap. @default clusterId (which `skein control` sets to `trust_domain`)
   */
  trustDomain?: string | null;
  /**
   * Hex SHA-256 of this node's bootstrap admin token (`bootstrap_token_file`). The node registers
   * it as an `admin` operator token once a leader is known and the replicated state has neither
   * it nor its revocation, so every node's file works cluster-wide. Only the hash is passed in,
   * so the secret never reaches the driver or its logs. @default null (none)
   */
  bootstrapTokenHash?: string | null;
  /**
   * Mutual TLS on the Raft port. With it the transport dials and listens with `identity`'s
   * certificate (control identities only, hello bound to the certificate), a leader proposes
   * `seedCa` instead of a fresh CA when the replicated state has none, and every applied CA
   * change (rotation, revocation) reaches `identity.updateCa`. @default undefined (plaintext)
   */
  tls?: ControlNodeTls;
  /**
   * How the leader carries CA rotations through (control.yaml `ca`).
   * @default defaultRotationPolicy(24h): no automatic start, one hour for stragglers
   */
  caRotation?: RotationPolicy;
  /** Logger. */
  log: Logger;
}

/** The TLS part of {@linkcode ControlNodeOptions}. */
export interface ControlNodeTls {
  /**
   * This node's certificate, issued from the seed; the driver hands it every applied CA change
   * (including the state restored at start-up). The caller owns it and closes it after `close()`.
   */
  identity: ControlIdentity;
  /** The CA seed (`ca.pem` + `ca.key`): proposed as the cluster CA when there is none yet. */
  seedCa: CaState;
}

interface _Pending {
  term: number;
  /** The validated command behind the entry, so the proposer applies it without decoding. */
  cmd: ValidatedCommand | null;
  resolve: (r: ApplyResult) => void;
  reject: (e: Error) => void;
}

interface _PendingConf {
  term: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface _Read {
  resolve: () => void;
  reject: (e: Error) => void;
  index?: number;
}

function _hostPort(s: string): { hostname: string; port: number } {
  const i = s.lastIndexOf(":");
  return { hostname: s.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(s.slice(i + 1)) };
}

/** What a follower receives for a forward the leader could not commit. */
function _forwardFailure(e: Error): ForwardOutcome {
  if (e instanceof BackendError) {
    // The follower rebuilds a plain BackendError, so a `not_leader` from here is answered
    // with 503 and never forwarded a second time.
    return { ok: false, status: e.status, code: e.code, message: e.message };
  }
  return { ok: false, status: 503, code: "internal", message: `the leader failed: ${e.message}` };
}

/** Leader messages that may go out before the Ready's fsync (they carry no promise). */
const _EARLY_SEND: ReadonlySet<Message["type"]> = new Set(["app", "heartbeat", "snap"]);

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** A running control node. */
export class ControlNode implements ControlBackend {
  readonly id: NodeId;
  readonly watcher: IndexWatcher;
  readonly #opts: ControlNodeOptions;
  readonly #log: Logger;
  readonly #raft: RaftNode;
  readonly #storage: MemoryStorage;
  readonly #durable: DurableLog;
  /** The claim on the data directory, given up by close(). */
  #dirLock: DataDirLock | null = null;
  #transport!: Transport;
  #state: RegistryState;
  readonly #leases: LeaseTracker;
  readonly #members = new Map<string, MemberAddress>();
  readonly #pending = new Map<number, _Pending>();
  readonly #pendingConf = new Map<number, _PendingConf>();
  readonly #reads = new Map<string, _Read>();
  readonly #forwards = new ForwardTable();
  #readSeq = 0;
  #role = "follower";
  #leader: string | null = null;
  #snapIndex = 0;
  /** Whether a snapshot is being encoded off the Raft loop. */
  #encodingSnapshot = false;
  /** A snapshot encoded off the loop, waiting for the loop to compact to it and save it. */
  #encodedSnapshot: {
    applied: number;
    state: RegistryState;
    data: Uint8Array;
    captureMs: number;
    encodeMs: number;
    sliceMs: number;
  } | null = null;
  /** Index of the last entry this driver applied; Raft's own `applied` lags until advance(). */
  #applied = 0;
  #pumping = false;
  #again = false;
  /** What the Ready loop awaits right now and since when, for the stall watchdog. */
  #stage = "idle";
  #stageSince = 0;
  #stallReported = false;
  /** The leader (`id@term`) whose lost connections already expired the election clock. */
  #leaderGoneFor = "";
  #closed = false;
  #fatal: Error | null = null;
  readonly #failed = Promise.withResolvers<Error>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #caAttempt: Promise<void> | null = null;
  #bootTokenAttempt: Promise<void> | null = null;
  #bootTokenLastAttemptMs = 0;
  #bootTokenFollowerSinceMs: number | null = null;
  #caLastAttemptMs = -Infinity;
  /** The CA last handed to the TLS identity, so only changes reach it. */
  #identityCa: CaState | null = null;
  /** Carries CA rotations through while this node leads. */
  readonly #rotation: RotationDriver;

  private constructor(
    opts: ControlNodeOptions,
    storage: MemoryStorage,
    durable: DurableLog,
  ) {
    this.#opts = opts;
    this.#log = opts.log;
    this.id = nodeId(opts.node);
    this.#storage = storage;
    this.#durable = durable;
    const snap = storage.snapshot();
    const { members, registry } = decodeSnapshotPayload(snap.data);
    for (const m of members) this.#members.set(m.node, m);
    this.#state = registry ? RegistryState.restore(registry) : new RegistryState();
    this.#snapIndex = snap.meta.index;
    this.#applied = snap.meta.index;
    this.watcher = new IndexWatcher(this.#state.index);
    this.#leases = new LeaseTracker({ ttlMs: opts.leaseTtlMs });
    this.#raft = new RaftNode({
      id: this.id,
      electionTicks: opts.electionTicks,
      heartbeatTicks: 1,
      preVote: true,
      checkQuorum: true,
      maxInflightMsgs: 256,
      maxEntriesPerMsg: 512,
      coalesceAppends: true,
      rankedTimeouts: true,
      random: opts.random ?? Math.random,
      storage,
      logger: opts.log,
    });
    this.#rotation = new RotationDriver({
      self: opts.node,
      state: () => this.#state,
      raft: () => this.#raft.status(),
      propose: (cmd, signal) => this.#proposeChecked(encodeCommand(cmd), cmd, signal),
      policy: opts.caRotation ?? defaultRotationPolicy(24 * 3_600_000),
      log: opts.log.with({ component: "ca_rotation" }),
    });
    // Our own address is always known, even before any entry mentions it.
    this.#members.set(opts.node, {
      node: opts.node,
      raft: opts.raftAdvertise,
      api: opts.apiUrl,
    });
  }

  /** Opens the data directory, restores state, joins the peers and starts ticking. */
  static async start(opts: ControlNodeOptions): Promise<ControlNode> {
    await Deno.mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
    // One owner per directory, or two WAL writers corrupt each other's acknowledged records.
    const lock = await DataDirLock.acquire(opts.dataDir);
    try {
      const node = await ControlNode.#startLocked(opts);
      node.#dirLock = lock;
      return node;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  static async #startLocked(opts: ControlNodeOptions): Promise<ControlNode> {
    const restored = await DurableLog.open(opts.dataDir, opts.log);
    let storage = restored.storage;
    if (restored.fresh && !opts.join) {
      // A founding member: every founder derives the same bootstrap snapshot from the same
      // peer list, so their logs agree at index 1.
      const founders = opts.peers.length > 0
        ? opts.peers
        : [{ id: opts.node, ..._hostPort(opts.raftAdvertise) }];
      const members: MemberAddress[] = founders
        .map((p) => ({ node: p.id, raft: `${p.hostname}:${p.port}`, api: null }))
        .sort((a, b) => (a.node < b.node ? -1 : 1));
      const conf: ConfState = { voters: founders.map((p) => nodeId(p.id)).sort(), learners: [] };
      const data = encodeSnapshotPayload(members, new RegistryState().snapshot());
      storage = MemoryStorage.bootstrap(conf, data);
      await restored.durable.saveSnapshot(storage.snapshot());
      await restored.durable.persist(storage.hardState(), []);
      opts.log.info("bootstrapped a new cluster member", { voters: conf.voters.join(",") });
    }
    const node = new ControlNode(opts, storage, restored.durable);
    for (const p of opts.peers) {
      if (!node.#members.has(p.id)) {
        node.#members.set(p.id, { node: p.id, raft: `${p.hostname}:${p.port}`, api: null });
      }
    }
    const tlsLog = opts.log.with({ component: "transport" });
    const tls = opts.tls
      ? {
        dialer: tlsDialer({ source: opts.tls.identity, logger: tlsLog }),
        listener: tlsListenerFactory({ source: opts.tls.identity, logger: tlsLog }),
        authorizePeer: spiffeControlAuthorizer(opts.tls.identity.trustDomain),
      }
      : {};
    node.#syncIdentityCa();
    node.#transport = await Transport.start({
      self: node.id,
      clusterId: opts.clusterId,
      listen: opts.raftListen,
      peers: node.#peerMap(),
      maxQueuedFrames: PEER_QUEUE_FRAMES,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      logger: opts.log.with({ component: "transport" }),
      reconnect: { baseMs: 50, maxMs: 1000 },
      // A peer that answers nothing for an election timeout gets a fresh connection: one that
      // outlived a partition would deliver only at TCP's next retransmission, seconds after the
      // heal, and hold up the next election.
      peerSilenceMs: opts.tickMs * opts.electionTicks,
      ...tls,
    }, (from, frame) => node.#onFrame(from, frame));
    node.#timers.push(setInterval(() => node.#tick(), opts.tickMs));
    node.#timers.push(setInterval(() => node.#announce(), ANNOUNCE_INTERVAL_MS));
    node.#timers.push(setInterval(() => node.#checkLeases(), LEASE_CHECK_INTERVAL_MS));
    node.#announce();
    node.#kick();
    opts.log.info("control node started", {
      node: opts.node,
      raft: opts.raftAdvertise,
      api: opts.apiUrl,
      applied: node.#state.appliedIndex,
    });
    return node;
  }

  /** Resolves with the error that stopped this node (a storage failure or broken invariant). */
  get failed(): Promise<Error> {
    return this.#failed.promise;
  }

  /** The Raft address the transport actually listens on (useful with port 0). */
  get raftAddr(): { hostname: string; port: number } {
    return this.#transport.addr;
  }

  /** The peers to keep links to: every other member, except control identities revoked. */
  #peerMap(): Map<NodeId, { hostname: string; port: number }> {
    const m = new Map<NodeId, { hostname: string; port: number }>();
    const td = this.#opts.tls?.identity.trustDomain;
    const ca = this.#state.ca();
    for (const [id, a] of this.#members) {
      if (id === this.#opts.node) continue;
      if (td && ca && isRevoked(ca, `spiffe://${td}/control/${id}`)) continue;
      m.set(nodeId(id), _hostPort(a.raft));
    }
    return m;
  }

  // ---------------------------------------------------------------- inputs

  #tick(): void {
    if (this.#closed) return;
    this.#watchStall();
    this.#forwards.expire();
    this.#raft.tick();
    this.#maybeLeaderGone();
    this.#kick();
    this.#maybeBootstrapCa();
    this.#maybeRegisterBootstrapToken();
    void this.#rotation.tick();
  }

  /**
   * Registers this node's bootstrap token hash as an admin operator token when the state lacks
   * it. A leader commits it itself; a follower forwards the proposal to the leader over the peer
   * link, so a node's file works without that node ever leading. A revoked hash is never
   * proposed again (the state remembers revocations), and a duplicate from a node that has not
   * yet applied the first registration is a harmless refusal.
   */
  #maybeRegisterBootstrapToken(): void {
    const hash = this.#opts.bootstrapTokenHash;
    if (!hash || this.#closed || this.#bootTokenAttempt) return;
    if (this.#state.operatorTokenStatus(hash) !== "absent") return;
    const st = this.#raft.status();
    const now = Date.now();
    if (st.role !== "leader") {
      if (!st.leader || !this.#members.has(st.leader)) {
        this.#bootTokenFollowerSinceMs = null;
        return;
      }
      this.#bootTokenFollowerSinceMs ??= now;
      if (now - this.#bootTokenFollowerSinceMs < BOOTSTRAP_TOKEN_FOLLOWER_DELAY_MS) return;
    }
    if (now - this.#bootTokenLastAttemptMs < BOOTSTRAP_TOKEN_RETRY_MS) return;
    this.#bootTokenLastAttemptMs = now;
    this.#bootTokenAttempt = this.#registerBootstrapToken(hash, now).finally(() => {
      this.#bootTokenAttempt = null;
    });
  }

  async #registerBootstrapToken(hash: string, now: number): Promise<void> {
    try {
      const cmd = validateCommand({
        type: "put_operator_token",
        record: {
          id: `${BOOTSTRAP_TOKEN_ID_PREFIX}${hash.slice(0, 16)}`,
          name: `bootstrap ${this.#opts.node}`.slice(0, 64),
          role: "admin",
          hash,
          createdAt: now,
          expiresAt: null,
        },
      });
      const r = await this.propose(cmd, AbortSignal.timeout(BOOTSTRAP_TOKEN_COMMIT_TIMEOUT_MS));
      if (r.ok) {
        this.#log.info("bootstrap admin token registered", {
          credential_id: `${BOOTSTRAP_TOKEN_ID_PREFIX}${hash.slice(0, 16)}`,
        });
      } else if (r.error.code !== "token_exists" && r.error.code !== "token_revoked") {
        this.#log.warn("bootstrap token registration refused", {
          code: r.error.code,
          reason: r.error.message,
        });
      }
    } catch (e) {
      if (this.#closed) return;
      this.#log.debug("bootstrap token registration did not commit; will retry", {
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
    if (this.#closed || this.#role !== "leader" || this.#caAttempt || this.#state.ca()) return;
    const td = this.#opts.trustDomain === undefined ? this.#opts.clusterId : this.#opts.trustDomain;
    if (td === null || !isTrustDomain(td)) return;
    const now = Date.now();
    if (now - this.#caLastAttemptMs < CA_BOOTSTRAP_RETRY_MS) return;
    this.#caLastAttemptMs = now;
    this.#caAttempt = this.#bootstrapCa(td, now).finally(() => {
      this.#caAttempt = null;
    });
  }

  async #bootstrapCa(trustDomain: string, now: number): Promise<void> {
    try {
      const seed = this.#opts.tls?.seedCa;
      if (seed && seed.trustDomain !== trustDomain) {
        this.#log.error("CA seed is for another trust domain; not proposing it", {
          seed_trust_domain: seed.trustDomain,
          trust_domain: trustDomain,
        });
        return;
      }
      // With a seed, the cluster CA is the seed, so the leaves nodes issued from it before
      // Raft ran stay valid.
      const ca = seed ?? await createCa({ trustDomain, now });
      if (this.#closed || this.#role !== "leader" || this.#state.ca()) return;
      const cmd = validateCommand({ type: "put_ca", ca, expect_root_id: null });
      const r = await this.#proposeChecked(
        encodeCommand(cmd),
        cmd,
        AbortSignal.timeout(CA_BOOTSTRAP_COMMIT_TIMEOUT_MS),
      );
      if (r.ok && r.value.type === "put_ca") {
        this.#log.info("certificate authority created", {
          source: seed ? "seed" : "generated",
          trust_domain: trustDomain,
          root: r.value.activeRootId,
        });
      } else if (!r.ok && r.error.code !== "ca_exists") {
        this.#log.warn("CA bootstrap refused", { code: r.error.code, reason: r.error.message });
      }
    } catch (e) {
      if (this.#closed) return;
      this.#log.warn("CA bootstrap did not commit; will retry", { reason: (e as Error).message });
    }
  }

  /**
   * A follower whose connections to the leader both broke (a crashed leader's kernel resets
   * them) lets its election clock run out now instead of waiting a full timeout: its voter lease
   * ends and it campaigns after the remaining random part of the timeout. Only liveness changes:
   * Raft's safety never depends on timing, reads use ReadIndex (no clock lease), and pre-vote
   * still stops a node whose peers hear the leader from disrupting it.
   */
  #maybeLeaderGone(): void {
    const st = this.#raft.status();
    if (st.role !== "follower" || st.leader === null || st.leader === this.id) return;
    const key = `${st.leader}@${st.term}`;
    if (this.#leaderGoneFor === key) return;
    const link = this.#transport.stats().get(st.leader);
    if (!link || link.connected || link.inboundConnected) return;
    this.#leaderGoneFor = key;
    this.#log.info("lost every connection to the leader; expiring its lease early", {
      leader: st.leader,
      term: st.term,
    });
    for (let i = 0; i < this.#opts.electionTicks; i++) this.#raft.tick();
  }

  #onFrame(from: NodeId, frame: Uint8Array): void {
    if (this.#closed || frame.length === 0) return;
    const type = frame[0];
    try {
      if (type === FRAME_RAFT) {
        const msg = decodeMessage(frame.subarray(1));
        if (msg.from !== from) {
          this.#log.warn("dropping a raft message whose sender differs from its connection", {
            conn: from,
            from: msg.from,
          });
          return;
        }
        this.#raft.step(msg);
        this.#kick();
      } else if (type === FRAME_FORWARD) {
        this.#onForward(from, frame);
      } else if (type === FRAME_FORWARD_RESULT) {
        const { id, outcome } = decodeForwardResult(frame);
        this.#forwards.settle(from, id, outcome);
      } else if (type === FRAME_ANNOUNCE) {
        const info = JSON.parse(_dec.decode(frame.subarray(1))) as { api?: unknown };
        const m = this.#members.get(from);
        if (m && typeof info.api === "string" && info.api.length < 300) {
          // A peer we knew no URL for has just (re)started: it does not know ours either.
          const fresh = m.api !== info.api;
          m.api = info.api;
          if (fresh) this.#announceTo(from);
        }
      }
    } catch (e) {
      this.#log.warn("dropping a malformed frame", { from, error: e as Error });
    }
  }

  /**
   * A follower's forwarded write. The bytes come from outside this process, so they are
   * validated like an API body; the answer leaves only once the entry is applied here (or
   * refused), exactly as the HTTP path would answer.
   */
  #onForward(from: NodeId, frame: Uint8Array): void {
    const { id, caller, command } = decodeForwardRequest(frame);
    const reply = (o: ForwardOutcome) => this.#transport.send(from, encodeForwardResult(id, o));
    let cmd: ValidatedCommand;
    try {
      cmd = decodeCommand(command);
    } catch (e) {
      reply({ ok: false, status: 400, code: "invalid_command", message: (e as Error).message });
      return;
    }
    // The follower checked the caller against its own copy of the tokens; the leader's copy is
    // authoritative (a token revoked a moment ago must not write through a lagging follower).
    const ca = this.#state.ca();
    const refused = caller?.peer && ca && isRevoked(ca, caller.peer)
      ? {
        ok: false as const,
        status: 403 as const,
        code: "revoked",
        message: `${caller.peer} is revoked`,
      }
      : forwardRefusal(cmd, caller, {
        tokens: this.#state.operatorTokens(),
        now: Date.now(),
      });
    if (refused) {
      reply(refused);
      return;
    }
    let p: Promise<ApplyResult>;
    try {
      // Copied: the entry outlives the transport's read buffer.
      p = this.#proposeChecked(command.slice(), cmd, AbortSignal.timeout(FORWARD_TIMEOUT_MS));
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (result) => reply({ ok: true, result }),
      (e) => reply(_forwardFailure(e as Error)),
    );
  }

  #announceFrame(): Uint8Array {
    const body = _enc.encode(JSON.stringify({ api: this.#opts.apiUrl }));
    const frame = new Uint8Array(body.length + 1);
    frame[0] = FRAME_ANNOUNCE;
    frame.set(body, 1);
    return frame;
  }

  #announce(): void {
    if (this.#closed) return;
    const frame = this.#announceFrame();
    for (const id of this.#members.keys()) {
      if (id !== this.#opts.node) this.#transport.send(nodeId(id), frame);
    }
  }

  #announceTo(id: string): void {
    if (!this.#closed) this.#transport.send(nodeId(id), this.#announceFrame());
  }

  #checkLeases(): void {
    if (this.#closed || this.#role !== "leader") return;
    // Instances carry service, id and health themselves: walked in place, nothing copied.
    const changes = this.#leases.expired(Date.now(), this.#state.allInstances());
    if (changes.length === 0) return;
    // A rack going down expires thousands at once: one entry per MAX_HEALTH_CHANGES_PER_COMMAND,
    // since a longer one is refused by every node and would be retried, refused, for good.
    let proposed = false;
    for (let i = 0; i < changes.length; i += MAX_HEALTH_CHANGES_PER_COMMAND) {
      const batch = changes.slice(i, i + MAX_HEALTH_CHANGES_PER_COMMAND);
      proposed = this.#raft.propose(encodeCommand({ type: "set_health", changes: batch })).ok ||
        proposed;
    }
    if (proposed) this.#kick();
  }

  // ---------------------------------------------------------------- the Ready loop

  #setStage(stage: string): void {
    this.#stage = stage;
    this.#stageSince = Date.now();
    this.#stallReported = false;
  }

  #watchStall(): void {
    if (this.#stage === "idle" || this.#stallReported) return;
    const ms = Date.now() - this.#stageSince;
    if (ms < STALL_WARN_MS) return;
    this.#stallReported = true;
    this.#log.warn("ready loop stalled", { stage: this.#stage, ms });
  }

  #kick(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    queueMicrotask(() => this.#pump());
  }

  async #pump(): Promise<void> {
    try {
      do {
        this.#again = false;
        while (!this.#closed && this.#raft.hasReady()) {
          await this.#handleReady(this.#raft.ready());
          this.#raft.advance();
        }
      } while (this.#again && !this.#closed);
    } catch (e) {
      // A failed fsync (or a broken invariant) leaves us unable to promise durability: stop
      // serving rather than lie. The process owner sees `failed` and exits non-zero.
      this.#fatal = e as Error;
      this.#log.error("control node stopping after a fatal error in the ready loop", {
        stage: this.#stage,
        error: e as Error,
        stack: (e as Error).stack?.split("\n").slice(1, 6).join(" | "),
      });
      this.#failAll(new BackendError(503, "storage_failure", `storage failure: ${e}`));
      this.#failed.resolve(e as Error);
      await this.close();
    } finally {
      this.#pumping = false;
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.#onSoftState(rd.softState.role, rd.softState.leader);
    for (const d of rd.voteDecisions) {
      // Elections are rare; each decision and its reason is what explains a slow failover.
      this.#log.info(`raft: ${d.type.replace("_", "-")} ${d.outcome}`, {
        candidate: d.candidate,
        term: d.term,
        reason: d.reason,
      });
    }
    if (rd.snapshot) {
      this.#setStage("save_received_snapshot");
      await this.#durable.saveSnapshot(rd.snapshot);
      this.#storage.applySnapshot(rd.snapshot);
      this.#restoreFrom(rd.snapshot.data, rd.snapshot.meta.index);
    }
    // A leader may send its appends before its own fsync (Raft thesis 10.2.1, as etcd does):
    // the disk write overlaps the round trip. Safe because the pump is sequential: a commit
    // index covering these entries leaves only in a later Ready, after this fsync finished.
    // Answers (votes, append responses) always wait for the fsync.
    let early = false;
    if (this.#role === "leader" && rd.messages.length > 0) {
      early = true;
      for (const m of rd.messages) {
        if (_EARLY_SEND.has(m.type)) this.#send(m);
      }
    }
    // Committed entries that were already durable here before this Ready (and are not being
    // rewritten by it) are applied while the fsync runs: a write is then acknowledged after
    // one fsync round instead of two. Only entries new in this Ready wait for its fsync.
    let ce = rd.committedEntries;
    if (!rd.snapshot && ce.length > 0) {
      let durableThrough = this.#storage.lastIndex();
      if (rd.entries.length > 0) {
        durableThrough = Math.min(durableThrough, rd.entries[0]!.index - 1);
      }
      let n = 0;
      while (n < ce.length && ce[n]!.index <= durableThrough) n++;
      if (n > 0) {
        this.#apply(n === ce.length ? ce : ce.slice(0, n));
        ce = n === ce.length ? [] : ce.slice(n);
      }
    }
    if (rd.hardState || rd.entries.length > 0) {
      this.#setStage("persist");
      await this.#durable.persist(rd.hardState, rd.entries);
      if (rd.entries.length > 0) this.#storage.append(rd.entries);
      if (rd.hardState) this.#storage.setHardState(rd.hardState);
    }
    for (const m of rd.messages) if (!early || !_EARLY_SEND.has(m.type)) this.#send(m);
    if (ce.length > 0) this.#apply(ce);
    for (const rs of rd.readStates) {
      const r = this.#reads.get(rs.ctx);
      if (!r) continue;
      r.index = rs.index;
    }
    for (const f of rd.readFailures) {
      const r = this.#reads.get(f.ctx);
      if (!r) continue;
      this.#reads.delete(f.ctx);
      r.reject(
        f.reason === "no_leader" || f.reason === "stepped_down"
          ? new NotLeaderError(`read index failed: ${f.reason}`)
          : new NoQuorumError(`read index failed: ${f.reason}`),
      );
    }
    this.#releaseReads();
    await this.#maybeSnapshot();
    this.#setStage("idle");
  }

  #send(m: Message): void {
    const body = encodeMessage(m);
    const frame = new Uint8Array(body.length + 1);
    frame[0] = FRAME_RAFT;
    frame.set(body, 1);
    if (!this.#transport.send(m.to, frame) && m.type === "snap") {
      this.#raft.reportSnapshot(m.to, false);
    }
  }

  #onSoftState(role: string, leader: NodeId | null): void {
    const wasLeader = this.#role === "leader";
    if (leader !== this.#leader) {
      this.#log.info("leader changed", { leader: leader ?? "none", role });
    } else if (role !== this.#role) {
      this.#log.info("role changed", { role, term: this.#raft.status().term });
    }
    this.#role = role;
    this.#leader = leader;
    if (this.#forwards.size > 0) {
      this.#forwards.failExcept(
        role === "leader" ? null : leader,
        "the leader changed while a forwarded write was in flight; it may or may not be applied",
      );
    }
    // Followers forward to the leader's API URL: a new leader tells everyone at once.
    if (role === "leader" && !wasLeader) this.#announce();
    if (role === "leader" && !wasLeader) this.#leases.becameLeader(Date.now());
    if (role !== "leader" && wasLeader) this.#leases.clear();
  }

  #apply(entries: Entry[]): void {
    for (const e of entries) {
      this.#applied = e.index;
      if (e.type === "conf") {
        this.#onConfApplied(e);
        continue;
      }
      const pending = this.#pending.get(e.index);
      if (pending) this.#pending.delete(e.index);
      if (e.data.length === 0) {
        // A new leader's no-op; a proposal waiting at this index was overwritten.
        pending?.reject(new NotLeaderError("leadership changed before the write committed"));
        continue;
      }
      if (isMemberEntry(e.data)) {
        try {
          const m = decodeMemberEntry(e.data);
          const prev = this.#members.get(m.node);
          this.#members.set(m.node, { ...m, api: m.api ?? prev?.api ?? null });
          this.#transport.setPeers(this.#peerMap());
          // The new member needs our API URL to forward writes; do not make it wait a period.
          if (m.node !== this.#opts.node) this.#announceTo(m.node);
        } catch (err) {
          this.#log.error("skipping an undecodable member entry", {
            index: e.index,
            error: err as Error,
          });
        }
        pending?.resolve({ ok: true, index: e.index } as unknown as ApplyResult);
        continue;
      }
      let result: ApplyResult;
      try {
        // An entry this node proposed at this exact (index, term) holds the command it already
        // validated: skip JSON and schema. Every other entry was validated by the leader that
        // proposed it, so it gets a structural check only (decodeCommittedCommand).
        const cmd = pending?.cmd && pending.term === e.term
          ? pending.cmd
          : decodeCommittedCommand(e.data);
        result = this.#state.applyValidated(e.index, cmd);
      } catch (err) {
        // Every node applies the same log, so an undecodable entry is skipped identically.
        this.#log.error("skipping an undecodable registry entry", {
          index: e.index,
          error: err as Error,
        });
        pending?.reject(new BackendError(400, "bad_command", String(err)));
        continue;
      }
      if (pending) {
        if (pending.term === e.term) pending.resolve(result);
        else pending.reject(new NotLeaderError("leadership changed before the write committed"));
      }
    }
    this.#syncIdentityCa();
    this.watcher.notify(this.#state.index);
  }

  /**
   * Hands an applied CA change (the seed replaced, a rotation, a revocation) to the TLS
   * identity: new connections then use the new leaf, bundle and revocation list. The registry
   * stores a new frozen object per change, so comparing references finds every change.
   */
  #syncIdentityCa(): void {
    const identity = this.#opts.tls?.identity;
    const ca = this.#state.ca();
    if (!identity || ca === null || ca === this.#identityCa) return;
    this.#identityCa = ca;
    identity.updateCa(ca).catch((e) => {
      this.#log.error("TLS identity could not take the new CA", { error: e as Error });
    });
    // A revoked control node is refused on new connections; cut the open ones too, so it is
    // contained at once rather than when its links next break.
    this.#transport?.setPeers(this.#peerMap());
  }

  #onConfApplied(e: Entry): void {
    const p = this.#pendingConf.get(e.index);
    if (p) {
      this.#pendingConf.delete(e.index);
      if (p.term === e.term) p.resolve();
      else {p.reject(
          new NotLeaderError("leadership changed before the membership change committed"),
        );}
    }
    // The core applies the change itself only at advance(), after this Ready: so read the
    // change from the entry. Only a removal drops a transport link; an added node's address
    // came earlier in its member entry and must stay.
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch {
      return; // The core skips undecodable conf entries identically on every node.
    }
    if (cc.op === "remove" && cc.node !== this.#opts.node && this.#members.delete(cc.node)) {
      this.#transport.setPeers(this.#peerMap());
    }
  }

  #restoreFrom(data: Uint8Array, index: number): void {
    const { members, registry } = decodeSnapshotPayload(data);
    for (const m of members) {
      const prev = this.#members.get(m.node);
      this.#members.set(m.node, { ...m, api: prev?.api ?? m.api });
    }
    this.#state = registry ? RegistryState.restore(registry) : new RegistryState();
    this.#snapIndex = index;
    this.#applied = index;
    this.#transport.setPeers(this.#peerMap());
    this.#syncIdentityCa();
    this.watcher.notify(this.#state.index);
  }

  /**
   * Takes a snapshot every `snapshotEvery` applied entries. The state is captured at once, but
   * encoded in slices off the Raft loop (50,000 instances held a leader's loop, and so its
   * heartbeats, for up to 0.9 s); a later pass of the loop compacts the log to it and saves it.
   */
  async #maybeSnapshot(): Promise<void> {
    const done = this.#encodedSnapshot;
    if (done !== null) {
      this.#encodedSnapshot = null;
      // A snapshot installed from the leader meanwhile makes this one moot.
      if (done.state !== this.#state || done.applied <= this.#snapIndex) return;
      this.#raft.compact(done.applied, done.data);
      this.#snapIndex = done.applied;
      this.#setStage("save_snapshot");
      const t1 = performance.now();
      await this.#durable.saveSnapshot(this.#storage.snapshot());
      // Size and times, so an operator can see what a fleet's registry costs to snapshot.
      this.#log.info("snapshot saved", {
        index: done.applied,
        bytes: done.data.length,
        // What held the event loop: the capture, then the longest slice of the encoding.
        capture_ms: done.captureMs,
        longest_slice_ms: done.sliceMs,
        encode_ms: done.encodeMs,
        save_ms: Math.round(performance.now() - t1),
      });
      return;
    }
    const applied = this.#applied;
    if (this.#encodingSnapshot || applied - this.#snapIndex < this.#opts.snapshotEvery) return;
    const members = [...this.#members.values()].map((m) => ({ ...m, api: null }))
      .sort((a, b) => (a.node < b.node ? -1 : 1));
    const t0 = performance.now();
    const state = this.#state;
    const parts = state.snapshotParts();
    const captureMs = Math.round(performance.now() - t0);
    this.#encodingSnapshot = true;
    const stats = { longestSliceMs: 0 };
    encodeSnapshotYielding(parts, undefined, stats).then((registry) => {
      this.#encodedSnapshot = {
        applied,
        state,
        data: encodeSnapshotPayload(members, registry),
        captureMs,
        encodeMs: Math.round(performance.now() - t0),
        sliceMs: Math.round(stats.longestSliceMs),
      };
    }).catch((e) => {
      this.#log.error("snapshot encoding failed", { err: e as Error, index: applied });
    }).finally(() => {
      this.#encodingSnapshot = false;
    });
  }

  #releaseReads(): void {
    const applied = this.#applied;
    for (const [ctx, r] of this.#reads) {
      if (r.index !== undefined && r.index <= applied) {
        this.#reads.delete(ctx);
        r.resolve();
      }
    }
  }

  #failAll(e: Error): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    for (const p of this.#pendingConf.values()) p.reject(e);
    this.#pendingConf.clear();
    for (const r of this.#reads.values()) r.reject(e);
    this.#reads.clear();
    this.#forwards.failAll(e);
  }

  // ---------------------------------------------------------------- ControlBackend

  /** See {@linkcode ControlBackend.health}. */
  health(): HealthInfo {
    const st = this.#raft.status();
    const learner = st.conf.learners.includes(this.id);
    return {
      node: this.#opts.node,
      role: learner ? "learner" : st.role === "pre_candidate" ? "candidate" : st.role,
      leader: st.leader,
      term: st.term,
      commit_index: st.commit,
      // Log entries without registry effect (leader no-ops, member entries) count as applied,
      // so a converged cluster reports applied_index == commit_index.
      applied_index: Math.max(st.applied, this.#state.appliedIndex),
    };
  }

  #checkUsable(): void {
    if (this.#fatal) throw new BackendError(503, "storage_failure", this.#fatal.message);
    if (this.#closed) throw new BackendError(503, "shutting_down", "control node is shutting down");
  }

  #proposeFailure(r: Exclude<ProposeResult, { ok: true }>): Error {
    switch (r.reason) {
      case "not_leader":
      case "transferring":
        return new NotLeaderError();
      case "overloaded":
        return new BackendError(503, "overloaded", "too many uncommitted writes; retry later");
      default:
        return new BackendError(409, r.reason, r.detail);
    }
  }

  /**
   * See {@linkcode ControlBackend.propose}. On a follower the command goes to the leader over
   * the peer transport (one hop, answered after the leader applied it); only when no leader is
   * known does this reject with {@linkcode NotLeaderError}, so the API can try HTTP.
   */
  propose(
    cmd: ValidatedCommand,
    signal: AbortSignal,
    caller?: ForwardedCaller,
  ): Promise<ApplyResult> {
    this.#checkUsable();
    const st = this.#raft.status();
    if (st.role === "leader") return this.#proposeChecked(encodeCommand(cmd), cmd, signal);
    const leader = st.leader;
    if (!leader || leader === this.id || !this.#members.has(leader)) {
      return Promise.reject(new NotLeaderError());
    }
    const bytes = encodeCommand(cmd);
    return this.#forwards.start(
      leader,
      signal,
      (id) => this.#transport.send(leader, encodeForwardRequest(id, bytes, caller)),
      () => new NotLeaderError(`the link to the leader ${leader} is not accepting frames`),
    );
  }

  #proposeChecked(
    data: Uint8Array,
    cmd: ValidatedCommand,
    signal: AbortSignal,
  ): Promise<ApplyResult> {
    if (this.#pending.size >= MAX_PENDING_PROPOSALS) {
      return Promise.reject(
        new BackendError(503, "overloaded", "too many writes waiting to commit; retry later"),
      );
    }
    return this.#proposeData(data, signal, cmd);
  }

  #proposeData(
    data: Uint8Array,
    signal: AbortSignal,
    cmd: ValidatedCommand | null = null,
  ): Promise<ApplyResult> {
    const r = this.#raft.propose(data);
    if (!r.ok) return Promise.reject(this.#proposeFailure(r));
    this.#kick();
    return new Promise<ApplyResult>((resolve, reject) => {
      const onAbort = () => {
        if (this.#pending.get(r.index)?.term === r.term) this.#pending.delete(r.index);
        reject(new NoQuorumError("the write was not committed in time"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(r.index, {
        term: r.term,
        cmd,
        resolve: (v) => {
          signal.removeEventListener("abort", onAbort);
          resolve(v);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
    });
  }

  /** See {@linkcode ControlBackend.linearizableRead}. */
  linearizableRead(signal: AbortSignal): Promise<void> {
    this.#checkUsable();
    const ctx = `${this.#opts.node}-${++this.#readSeq}`;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#reads.delete(ctx);
        reject(new NoQuorumError("leadership could not be confirmed in time"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#reads.set(ctx, {
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
      this.#raft.readIndex(ctx);
      this.#kick();
    });
  }

  /** See {@linkcode ControlBackend.state}. */
  state(): RegistryState {
    return this.#state;
  }

  /** See {@linkcode ControlBackend.leaderApi}. */
  leaderApi(): string | null {
    const l = this.#raft.status().leader;
    if (!l || l === this.id) return null;
    return this.#members.get(l)?.api ?? null;
  }

  /** See {@linkcode ControlBackend.isLeader}. */
  isLeader(): boolean {
    return this.#raft.status().role === "leader";
  }

  /** See {@linkcode ControlBackend.members}. */
  members(): Member[] {
    const conf = this.#raft.status().conf;
    const out: Member[] = [];
    for (
      const [id, voter] of [
        ...conf.voters.map((v) => [v, true] as const),
        ...conf.learners.map((v) => [v, false] as const),
      ]
    ) {
      const m = this.#members.get(id);
      out.push({ node: id, address: m?.raft ?? "", api: m?.api ?? null, voter });
    }
    return out.sort((a, b) => (a.node < b.node ? -1 : 1));
  }

  #proposeConf(
    op: "add_learner" | "promote" | "remove",
    node: string,
    signal: AbortSignal,
  ): Promise<void> {
    const r = this.#raft.proposeConfChange({ op, node: nodeId(node) });
    if (!r.ok) return Promise.reject(this.#proposeFailure(r));
    this.#kick();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#pendingConf.delete(r.index);
        reject(new NoQuorumError("the membership change was not committed in time"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#pendingConf.set(r.index, {
        term: r.term,
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
    });
  }

  /** See {@linkcode ControlBackend.addMember}: address entry, learner, catch-up, promotion. */
  async addMember(m: Member, signal: AbortSignal): Promise<void> {
    this.#checkUsable();
    if (!this.isLeader()) throw new NotLeaderError();
    const conf = this.#raft.status().conf;
    if (conf.voters.includes(nodeId(m.node))) {
      throw new BackendError(409, "member_exists", `member ${m.node} already exists`);
    }
    await this.#proposeData(
      encodeMemberEntry({ node: m.node, raft: m.address, api: m.api ?? null }),
      signal,
    );
    if (!this.#raft.status().conf.learners.includes(nodeId(m.node))) {
      await this.#proposeConf("add_learner", m.node, signal);
    }
    // Promote only once the learner has caught up, so adding a member never stalls commits.
    while (!signal.aborted) {
      const st = this.#raft.status();
      if (st.role !== "leader") throw new NotLeaderError();
      const match = st.progress?.[m.node]?.match ?? 0;
      if (st.lastIndex - match <= LEARNER_CATCHUP_LAG) {
        const r = this.#raft.proposeConfChange({ op: "promote", node: nodeId(m.node) });
        if (r.ok) {
          this.#kick();
          await new Promise<void>((resolve, reject) => {
            this.#pendingConf.set(r.index, { term: r.term, resolve, reject });
            signal.addEventListener("abort", () => {
              this.#pendingConf.delete(r.index);
              reject(new NoQuorumError("the promotion was not committed in time"));
            }, { once: true });
          });
          return;
        }
        if (r.reason !== "learner_behind" && r.reason !== "conf_change_pending") {
          throw this.#proposeFailure(r);
        }
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new NoQuorumError(`member ${m.node} did not catch up in time; it stays a learner`);
  }

  /** See {@linkcode ControlBackend.removeMember}. */
  async removeMember(node: string, signal: AbortSignal): Promise<void> {
    this.#checkUsable();
    if (!this.isLeader()) throw new NotLeaderError();
    await this.#proposeConf("remove", node, signal);
  }

  /** See {@linkcode ControlBackend.heartbeat}. */
  heartbeat(items: readonly HeartbeatItem[]): void {
    if (!this.isLeader()) throw new NotLeaderError();
    const now = Date.now();
    for (const i of items) this.#leases.heartbeat(i.service, i.id, i.health, now);
  }

  /** See {@linkcode ControlBackend.reportTrust}. */
  reportTrust(items: readonly HeartbeatItem[], report: TrustReport): void {
    for (const i of items) this.#rotation.reports.record(instanceMember(i.service, i.id), report);
  }

  /** See {@linkcode ControlBackend.rotationStatus}. */
  rotationStatus(): RotationStatus | null {
    return this.#rotation.status();
  }

  /** See {@linkcode ControlBackend.writeForwardStats}. */
  writeForwardStats(): WriteForwardStats {
    return this.#forwards.stats();
  }

  /** Hands leadership to the most caught-up voter and waits (bounded) until it took over. */
  async handOff(timeoutMs: number): Promise<boolean> {
    const st = this.#raft.status();
    if (st.role !== "leader" || !st.progress) return false;
    let best: string | null = null;
    let bestMatch = -1;
    for (const v of st.conf.voters) {
      if (v === this.id) continue;
      const p = st.progress[v];
      if (p && p.match > bestMatch) {
        best = v;
        bestMatch = p.match;
      }
    }
    if (!best) return false;
    this.#raft.transferLeadership(nodeId(best));
    this.#kick();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      if (this.#raft.status().role !== "leader") return true;
    }
    return false;
  }

  /** Stops timers, the transport and the WAL; pending callers get 503. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#failAll(new BackendError(503, "shutting_down", "control node is shutting down"));
    await this.#transport?.close();
    // Let an in-flight Ready finish its fsync before the WAL closes under it.
    for (let i = 0; i < 200 && this.#pumping; i++) await new Promise((r) => setTimeout(r, 5));
    await this.#durable.close().catch(() => {});
    this.#dirLock?.release();
  }
}
