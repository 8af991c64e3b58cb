/**
 * What the control API needs from the node it runs on. The control driver (Raft + WAL +
 * transport + registry) implements {@linkcode ControlBackend}; tests use a fake.
 * @module
 */
import type {
  ApplyResult,
  Health,
  IndexWatcher,
  RegistryState,
  ValidatedCommand,
} from "../registry/mod.ts";
import type { ForwardedCaller } from "../auth/mod.ts";
import type { RotationPolicy, RotationRecord, TrustReport } from "../ca/mod.ts";

/** This node's view of the cluster, served by `GET /v1/health`. */
export interface HealthInfo {
  /** This node's id. */
  node: string;
  /** Raft role: `leader`, `follower`, `candidate` or `learner`. */
  role: string;
  /** The leader's node id, or null when none is known. */
  leader: string | null;
  /** Current Raft term. */
  term: number;
  /** Highest log index known committed. */
  commit_index: number;
  /** Highest log index applied to the registry on this node. */
  applied_index: number;
  /** Ms since this node last heard from its leader (0 on the leader; null: never). */
  last_contact_ms: number | null;
}

/** A control node in the Raft configuration. */
export interface Member {
  /** Stable node id. */
  node: string;
  /** Raft peer address `host:port`. */
  address: string;
  /** Base URL of the node's API, when known. */
  api?: string | null;
  /** Whether the node votes (false while it catches up as a learner). @default true */
  voter?: boolean;
}

/** One instance's heartbeat, as a proxy sends it. */
export interface HeartbeatItem {
  /** Service name. */
  service: string;
  /** Instance id. */
  id: string;
  /** Result of the proxy's local health check. @default "passing" */
  health?: Health;
}

/** The node the API serves from. */
export interface ControlBackend {
  /** This node's role, term and indexes. */
  health(): HealthInfo;
  /** Ms since this node last heard from its leader: 0 on the leader, Infinity when never. */
  sinceLeaderContact(): number;
  /**
   * Proposes a validated command; resolves after it is committed on a quorum and applied (on
   * this node, or on the leader when a follower forwards it itself). Rejects with
   * {@linkcode NotLeaderError} when the API should forward over HTTP instead, or with
   * {@linkcode NoQuorumError}; should give up when `signal` aborts (the API also stops
   * waiting then). `caller` is the API's original caller: a follower passes it to the leader in
   * the forward frame, and the leader authorizes the command against it again
   * (`forwardRefusal` in `control/node/write_relay.ts`).
   */
  propose(
    cmd: ValidatedCommand,
    signal: AbortSignal,
    caller?: ForwardedCaller,
  ): Promise<ApplyResult>;
  /**
   * Resolves once this node's registry reflects every write committed before the call
   * (ReadIndex or leader lease). Rejects with {@linkcode NotLeaderError} when the API should
   * forward the read to the leader instead.
   */
  linearizableRead(signal: AbortSignal): Promise<void>;
  /** The registry as applied on this node. */
  state(): RegistryState;
  /** Notified with the catalog index after every apply; drives blocking queries. */
  readonly watcher: IndexWatcher;
  /** Base URL of the leader's API (e.g. `http://10.0.0.1:7400`), or null when unknown. */
  leaderApi(): string | null;
  /** Whether this node is the leader. */
  isLeader(): boolean;
  /** The current Raft configuration. */
  members(): Member[];
  /** Adds a member through a configuration change; leader only. */
  addMember(m: Member, signal: AbortSignal): Promise<void>;
  /** Removes a member through a configuration change; leader only. */
  removeMember(node: string, signal: AbortSignal): Promise<void>;
  /** Records heartbeats in the leader's leases (not a Raft write); leader only. */
  heartbeat(items: readonly HeartbeatItem[]): void;
  /** Counters of writes this node forwarded to the leader itself (not over HTTP), if it does. */
  writeForwardStats?(): WriteForwardStats;
  /** Records what the proxy behind these instances holds (leader; a CA rotation waits on it). */
  reportTrust?(items: readonly HeartbeatItem[], report: TrustReport): void;
  /**
   * The members whose certificate may still come from the intermediate with that SHA-256
   * fingerprint (leader), sorted; empty when every member has moved off it.
   */
  membersOnIntermediate?(fingerprint: string): string[];
  /** The CA rotation as this node sees it, or null without a CA. */
  rotationStatus?(): RotationStatusView | null;
}

/** `GET /v1/ca/rotation`'s body (see `control/node/ca_rotation_driver.ts`). */
export interface RotationStatusView {
  /** The replicated rotation record, or null. */
  rotation: RotationRecord | null;
  /** Trusted root ids, active first. */
  roots: string[];
  /** Members that have not caught up with the current phase. */
  missing: string[];
  /** Members expected to. */
  members: number;
  /** Whether this node leads. */
  leader: boolean;
  /** The policy in force. */
  policy: RotationPolicy;
}

/** Counters of writes a follower forwarded to the leader over the peer transport. */
export interface WriteForwardStats {
  /** Forwards waiting for the leader's answer. */
  inFlight: number;
  /** Forwards sent. */
  sent: number;
  /** Forwards the leader answered (committed or refused). */
  answered: number;
  /** Forwards that ended without an answer (timeout, leader change, shutdown). */
  lost: number;
}

/** A backend failure that maps to an HTTP status. */
export class BackendError extends Error {
  /** Creates the error; `status` is the HTTP status the API answers with. */
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "BackendError";
  }
}

/** This node is not the leader (or lost leadership); the API forwards or answers 503. */
export class NotLeaderError extends BackendError {
  /** Creates the error. */
  constructor(message = "this node is not the leader") {
    super(503, "not_leader", message);
    this.name = "NotLeaderError";
  }
}

/** A write or read barrier could not reach a quorum. */
export class NoQuorumError extends BackendError {
  /** Creates the error. */
  constructor(message = "no quorum of control nodes reachable") {
    super(503, "no_quorum", message);
    this.name = "NoQuorumError";
  }
}
