/**
 * The options a control node starts with (from `control.yaml`, through `cmd/control.ts`).
 * @module
 */
import type { Logger } from "../../common/mod.ts";
import type { CaState, RotationPolicy } from "../ca/mod.ts";
import type { ControlIdentity } from "../tls/mod.ts";

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
