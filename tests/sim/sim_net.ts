/**
 * A simulated peer network for control nodes. Every frame is delayed by a seeded random time
 * (so frames overtake each other), may be dropped or duplicated, and is lost across a partition.
 * A frame reaches only the same life of the receiver that was running when it was sent, and
 * only while its sender's life still runs: a TCP connection dies with either process.
 *
 * Raft messages get every fault. Other frames (forwarded writes and their results, API-URL
 * announcements) may be lost but arrive in order and once per pair of lives, as on the real
 * transport's TCP links: the write relay is at-most-once because TCP is, and a network that
 * duplicated a forwarded write would test a transport skein does not have.
 * @module
 */
import type { NodeId } from "../../common/mod.ts";
import type { FrameSink, PeerAddr, PeerNet } from "../../control/node/ports.ts";
import type { Incarnation, World } from "./world.ts";
import { FRAME_RAFT } from "../../control/node/envelope.ts";

/** Fault rates of {@linkcode SimNet}. */
export interface SimNetOptions {
  /** Seeded random source. */
  random: () => number;
  /** Chance a frame is lost. */
  dropChance: number;
  /** Chance a frame is delivered twice. */
  dupChance: number;
  /** Least delivery delay in virtual milliseconds. */
  delayMinMs: number;
  /** Greatest delivery delay in virtual milliseconds. */
  delayMaxMs: number;
}

interface _Endpoint {
  life: Incarnation;
  onFrame: FrameSink;
  peers: Set<string>;
}

/** The network between the simulated nodes. */
export class SimNet {
  readonly #world: World;
  readonly #opts: SimNetOptions;
  readonly #nodes = new Map<string, _Endpoint>();
  /** Pairs `a|b` (both orders) that cannot reach each other. */
  readonly #cut = new Set<string>();
  /** Whether faults (drop, duplicate) apply; healing turns them off. */
  faulty = true;
  /** When the last in-order frame of each `from|to` pair arrives. */
  readonly #fifoAt = new Map<string, number>();
  /** Frames sent, dropped, duplicated. */
  stats = { sent: 0, dropped: 0, duplicated: 0 };

  /** Creates an empty network. */
  constructor(world: World, opts: SimNetOptions) {
    this.#world = world;
    this.#opts = opts;
  }

  /** Splits the nodes: no frame crosses between `side` and the rest. */
  partition(side: readonly string[], all: readonly string[]): void {
    this.#cut.clear();
    for (const a of side) {
      for (const b of all) {
        if (side.includes(b)) continue;
        this.#cut.add(`${a}|${b}`);
        this.#cut.add(`${b}|${a}`);
      }
    }
  }

  /** Removes every partition. */
  heal(): void {
    this.#cut.clear();
  }

  #reachable(a: string, b: string): boolean {
    return !this.#cut.has(`${a}|${b}`);
  }

  /** The {@linkcode PeerNet} of one life of node `self`. */
  endpoint(
    self: NodeId,
    life: Incarnation,
  ): (p: Map<NodeId, PeerAddr>, f: FrameSink) => Promise<PeerNet> {
    return (peers, onFrame) => {
      const ep: _Endpoint = { life, onFrame, peers: new Set(peers.keys()) };
      this.#nodes.set(self, ep);
      const net: PeerNet = {
        send: (to, frame) => {
          if (!life.alive || !ep.peers.has(to)) return false;
          this.#send(self, ep, to, frame.slice());
          return true;
        },
        setPeers: (p) => {
          ep.peers = new Set(p.keys());
        },
        connected: (peer) => {
          if (!ep.peers.has(peer)) return undefined;
          const other = this.#nodes.get(peer);
          return !!other && other.life.alive && this.#reachable(self, peer);
        },
        addr: { hostname: self, port: 1 },
        close: () => Promise.resolve(),
      };
      return Promise.resolve(net);
    };
  }

  #send(from: string, sender: _Endpoint, to: string, frame: Uint8Array): void {
    const r = this.#opts.random;
    this.stats.sent++;
    const receiver = this.#nodes.get(to);
    if (!receiver || !receiver.life.alive || !this.#reachable(from, to)) return;
    if (this.faulty && r() < this.#opts.dropChance) {
      this.stats.dropped++;
      return;
    }
    const raft = frame[0] === FRAME_RAFT;
    const copies = raft && this.faulty && r() < this.#opts.dupChance ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const span = this.#opts.delayMaxMs - this.#opts.delayMinMs;
    for (let i = 0; i < copies; i++) {
      let at = this.#world.now + this.#opts.delayMinMs + Math.floor(r() * (span + 1));
      if (!raft) {
        // Equal times run in the order they were queued, so FIFO holds.
        const key = `${from}|${to}`;
        at = Math.max(at, this.#fifoAt.get(key) ?? 0);
        this.#fifoAt.set(key, at);
      }
      this.#world.at(at, () => {
        // A connection dies with either end, and frames do not cross a partition made meanwhile.
        if (!sender.life.alive || this.#nodes.get(to) !== receiver) return;
        if (!this.#reachable(from, to)) return;
        receiver.onFrame(from as NodeId, frame);
      }, receiver.life);
    }
  }
}
