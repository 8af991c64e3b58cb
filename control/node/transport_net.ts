/**
 * The production {@linkcode PeerNetFactory}: the peer transport over TCP, mTLS with control
 * identities when the node has TLS, with the reconnect and silence bounds the cluster runs on.
 * @module
 */
import { nodeId } from "../../common/mod.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  spiffeControlAuthorizer,
  tlsDialer,
  tlsListenerFactory,
  Transport,
} from "../transport/mod.ts";
import type { ControlNodeOptions } from "./options.ts";
import type { PeerNetFactory } from "./ports.ts";

/** Frames queued per peer before the transport drops (Raft retransmits what is lost). */
export const PEER_QUEUE_FRAMES = 4096;

/** The real mTLS (or plaintext) peer transport as the node's {@linkcode PeerNet}. */
export function transportNet(opts: ControlNodeOptions): PeerNetFactory {
  return async (peers, onFrame) => {
    const tlsLog = opts.log.with({ component: "transport" });
    const tls = opts.tls
      ? {
        dialer: tlsDialer({ source: opts.tls.identity, logger: tlsLog }),
        listener: tlsListenerFactory({ source: opts.tls.identity, logger: tlsLog }),
        authorizePeer: spiffeControlAuthorizer(opts.tls.identity.trustDomain),
      }
      : {};
    const t = await Transport.start({
      self: nodeId(opts.node),
      clusterId: opts.clusterId,
      listen: opts.raftListen,
      peers,
      maxQueuedFrames: PEER_QUEUE_FRAMES,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      logger: opts.log.with({ component: "transport" }),
      reconnect: { baseMs: 50, maxMs: 1000 },
      // A peer that answers nothing for an election timeout gets a fresh connection: one that
      // outlived a partition would deliver only at TCP's next retransmission, seconds after the
      // heal, and hold up the next election.
      peerSilenceMs: opts.tickMs * opts.electionTicks,
      ...tls,
    }, onFrame);
    return {
      send: (to, frame) => t.send(to, frame),
      setPeers: (p) => t.setPeers(p),
      connected(peer) {
        const link = t.stats().get(peer);
        return link ? link.connected || link.inboundConnected : undefined;
      },
      get addr() {
        return t.addr;
      },
      close: () => t.close(),
    };
  };
}
