/**
 * The I/O a control node is given rather than reaching for itself: the disk (a
 * {@linkcode StorageFs}), the peer network and the clock. Production passes the real ones
 * ({@linkcode systemClock}, the mTLS transport, `DenoFs`); the deterministic simulation in
 * `tests/sim/` passes fakes that crash, tear writes, drop and reorder frames on a seed.
 * @module
 */
import type { NodeId } from "../../common/mod.ts";
import type { StorageFs } from "../storage/fs.ts";
import { steadyEvery } from "./steady_timer.ts";

/** Time and timers as the node sees them. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Calls `fn` every `ms` milliseconds, on a fixed phase (late calls do not delay later ones),
   * until the returned function is called.
   */
  every(ms: number, fn: () => void): () => void;
  /** Resolves after `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
  /** A signal that aborts after `ms` milliseconds. */
  timeout(ms: number): AbortSignal;
}

/** The wall clock and the runtime's timers (periodic ones on a fixed phase). */
export const systemClock: Clock = {
  now: () => Date.now(),
  every: (ms, fn) => steadyEvery(ms, fn),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  timeout: (ms) => AbortSignal.timeout(ms),
};

/** Where a peer listens. */
export interface PeerAddr {
  /** Host name or IP. */
  hostname: string;
  /** TCP port. */
  port: number;
}

/** The peer network as the node sees it: opaque frames to and from other control nodes. */
export interface PeerNet {
  /** Queues a frame for `to`; false when it was dropped (unknown peer, full queue). */
  send(to: NodeId, frame: Uint8Array): boolean;
  /** Replaces the set of peers to keep links to. */
  setPeers(peers: Map<NodeId, PeerAddr>): void;
  /** Whether any connection to `peer` is up, either direction; undefined when it is no peer. */
  connected(peer: NodeId): boolean | undefined;
  /** The address this node listens on. */
  readonly addr: PeerAddr;
  /** Closes every link. */
  close(): Promise<void>;
}

/** Receives a frame from a peer. */
export type FrameSink = (from: NodeId, frame: Uint8Array) => void;

/** Opens the node's peer network with its first peer set; frames go to `onFrame`. */
export type PeerNetFactory = (
  peers: Map<NodeId, PeerAddr>,
  onFrame: FrameSink,
) => Promise<PeerNet>;

/** Everything a control node does I/O through. */
export interface NodePorts {
  /** The data directory's file system. */
  fs: StorageFs;
  /** Opens the peer network. */
  net: PeerNetFactory;
  /** Time and timers. */
  clock: Clock;
}
