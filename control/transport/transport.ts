/**
 * The transport between control nodes: opaque frames to and from node ids over TCP (or any
 * `ByteStream`), with a bounded queue and writer loop per peer and a streaming decoder per
 * inbound connection.
 * @module
 */

import type { NodeId } from "../../common/ids.ts";
import type { Logger } from "../../common/log.ts";
import type { BackoffOptions } from "./backoff.ts";
import { FrameDecoder, MAX_U32 } from "./frame.ts";
import { decodeHello, MAX_HELLO_BYTES } from "./hello.ts";
import { clockSkewProblem, MAX_PEER_CLOCK_SKEW_MS } from "./clock_skew.ts";
import { formatAddress, PeerLink, type PeerStats } from "./peer_link.ts";
import { PeerSilence } from "./peer_silence.ts";
import {
  allowAnyPeer,
  type ByteStream,
  type Dialer,
  type ListenerFactory,
  type PeerAddress,
  type PeerAuthorizer,
  type StreamListener,
  tcpDialer,
  tcpListenerFactory,
} from "./stream.ts";
import { abortableSleep } from "../../common/sleep.ts";

/** Default cap on payload bytes queued for one peer. */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/**
 * How long a frame may wait for its peer before it is dropped unsent. Raft resends what matters,
 * and a message older than an election timeout is more likely to mislead than to help.
 */
export const DEFAULT_MAX_QUEUE_AGE_MS = 2_000;

/** Default time an outbound dial may take. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5_000;

/** Default time an inbound connection has to send a valid hello. */
export const DEFAULT_HELLO_TIMEOUT_MS = 5_000;

/** Default cap on simultaneously open inbound connections (authenticated or not). */
export const DEFAULT_MAX_INBOUND_CONNECTIONS = 64;

/** Bytes read per call on an inbound connection. */
export const READ_BUFFER_BYTES = 64 * 1024;

/** Pause after a failing `accept()` (e.g. out of file descriptors), so it cannot spin. */
const ACCEPT_ERROR_PAUSE_MS = 100;

/** Called once per received frame, synchronously from the connection's read loop. */
export type FrameHandler = (from: NodeId, frame: Uint8Array) => void;

/** Options for {@linkcode Transport.start}. */
export interface TransportOptions {
  /** This node's id, sent in every hello. */
  readonly self: NodeId;
  /** Cluster id; a hello naming another cluster is refused. */
  readonly clusterId: string;
  /** Address to listen on; port 0 picks a free port (see `Transport.addr`). */
  readonly listen: PeerAddress;
  /** The other nodes and their addresses; an entry for `self` is ignored. */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** Frames queued per peer before `send` returns false. */
  readonly maxQueuedFrames: number;
  /** Payload bytes queued per peer before `send` returns false. @default DEFAULT_MAX_QUEUED_BYTES */
  readonly maxQueuedBytes?: number;
  /** Frames queued longer than this are dropped unsent. @default DEFAULT_MAX_QUEUE_AGE_MS */
  readonly maxQueueAgeMs?: number;
  /** Largest frame sent or accepted. Use DEFAULT_MAX_FRAME_BYTES unless there is a reason. */
  readonly maxFrameBytes: number;
  /** Opens outbound streams. @default tcpDialer */
  readonly dialer?: Dialer;
  /** Opens the listening socket. @default tcpListenerFactory */
  readonly listener?: ListenerFactory;
  /** Checks a channel identity against the node id it speaks for. @default allowAnyPeer */
  readonly authorizePeer?: PeerAuthorizer;
  /** Where events go. */
  readonly logger: Logger;
  /** Reconnect backoff. */
  readonly reconnect: BackoffOptions;
  /** Random source in [0, 1) for backoff jitter. @default Math.random */
  readonly random?: () => number;
  /** Clock in milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Time allowed for one dial. @default DEFAULT_DIAL_TIMEOUT_MS */
  readonly dialTimeoutMs?: number;
  /** Time an inbound connection has to present its hello. @default DEFAULT_HELLO_TIMEOUT_MS */
  readonly helloTimeoutMs?: number;
  /** Largest clock difference accepted from a peer's hello. @default MAX_PEER_CLOCK_SKEW_MS */
  readonly maxClockSkewMs?: number;
  /** Inbound connections open at once; more are closed on accept. @default DEFAULT_MAX_INBOUND_CONNECTIONS */
  readonly maxInboundConnections?: number;
  /**
   * A peer we sent frames to that sent nothing back for this long gets a fresh outbound
   * connection (see `PeerSilence`); Raft answers every message a peer needs answered, so silence
   * means a dead path. 0 = never. @default 0
   */
  readonly peerSilenceMs?: number;
}

/** Per-peer counters, keyed by node id. */
export type TransportStats = Map<NodeId, PeerStats>;

interface _Inbound {
  readonly stream: ByteStream;
  node: NodeId | null;
}

/** Moves opaque frames between control nodes. */
export class Transport {
  readonly #opts: TransportOptions;
  readonly #onFrame: FrameHandler;
  readonly #listener: StreamListener;
  readonly #log: Logger;
  readonly #links = new Map<NodeId, PeerLink>();
  readonly #inbound = new Set<_Inbound>();
  readonly #inboundByNode = new Map<NodeId, _Inbound>();
  // Peers refused for their clock since their last good hello: said once at error, then debug.
  readonly #skewed = new Set<NodeId>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #shutdown = new AbortController();
  #acceptLoop: Promise<void> = Promise.resolve();
  #closing: Promise<void> | null = null;
  #silence: PeerSilence | null = null;
  #silenceTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(opts: TransportOptions, onFrame: FrameHandler, listener: StreamListener) {
    this.#opts = opts;
    this.#onFrame = onFrame;
    this.#listener = listener;
    this.#log = opts.logger.with({ component: "transport" });
  }

  /** Binds the listener, starts dialling every peer and returns the running transport. */
  static async start(opts: TransportOptions, onFrame: FrameHandler): Promise<Transport> {
    _validate(opts);
    const listener = await (opts.listener ?? tcpListenerFactory).listen(opts.listen);
    const t = new Transport(opts, onFrame, listener);
    t.#log.info("transport: listening", { addr: formatAddress(listener.addr) });
    t.#acceptLoop = t.#runAccept();
    t.setPeers(opts.peers);
    const silenceMs = opts.peerSilenceMs ?? 0;
    if (silenceMs > 0) {
      const now = opts.now ?? Date.now;
      const silence = t.#silence = new PeerSilence(silenceMs);
      t.#silenceTimer = setInterval(() => {
        for (const [node, link] of t.#links) {
          const why = silence.check(node, link.stats, now());
          if (why !== null) link.reconnect(why);
        }
      }, Math.max(10, Math.floor(silenceMs / 4)));
      Deno.unrefTimer(t.#silenceTimer);
    }
    return t;
  }

  /** The bound listen address. */
  get addr(): PeerAddress {
    return this.#listener.addr;
  }

  /**
   * Queues `frame` for `to`; never blocks. Returns false when the frame was dropped: unknown
   * peer, full queue, or a closed transport. The frame is sent from the caller's buffer, so
   * it must not be modified afterwards.
   */
  send(to: NodeId, frame: Uint8Array): boolean {
    if (frame.length === 0 || frame.length > this.#opts.maxFrameBytes) {
      throw new RangeError(
        `transport.send: frame of ${frame.length} bytes to ${to}, allowed 1..${this.#opts.maxFrameBytes}`,
      );
    }
    if (this.#closing) return false;
    const link = this.#links.get(to);
    return link ? link.enqueue(frame) : false;
  }

  /** Replaces the peer set: new peers are dialled, removed ones disconnected, moved ones redialled. */
  setPeers(peers: ReadonlyMap<NodeId, PeerAddress>): void {
    if (this.#closing) return;
    for (const [node, link] of this.#links) {
      if (peers.has(node) && node !== this.#opts.self) continue;
      this.#links.delete(node);
      this.#log.info("transport: peer removed", { peer: node });
      this.#track(link.close());
      this.#inboundByNode.get(node)?.stream.close();
    }
    for (const [node, addr] of peers) {
      if (node === this.#opts.self) continue;
      const existing = this.#links.get(node);
      if (existing) {
        existing.setAddress(addr);
        continue;
      }
      const o = this.#opts;
      const link = new PeerLink({
        self: o.self,
        clusterId: o.clusterId,
        peer: node,
        addr,
        maxQueuedFrames: o.maxQueuedFrames,
        maxQueuedBytes: o.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
        maxQueueAgeMs: o.maxQueueAgeMs ?? DEFAULT_MAX_QUEUE_AGE_MS,
        dialer: o.dialer ?? tcpDialer,
        authorizePeer: o.authorizePeer ?? allowAnyPeer,
        logger: this.#log,
        reconnect: o.reconnect,
        random: o.random ?? Math.random,
        now: o.now ?? Date.now,
        dialTimeoutMs: o.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
      });
      this.#links.set(node, link);
      link.start();
    }
  }

  /** A snapshot of every current peer's counters. */
  stats(): TransportStats {
    const out: TransportStats = new Map();
    for (const [node, link] of this.#links) {
      out.set(node, { ...link.snapshot(), inboundConnected: this.#inboundByNode.has(node) });
    }
    return out;
  }

  /** Stops listening, closes every connection and waits for all loops to finish. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#silenceTimer !== null) clearInterval(this.#silenceTimer);
    this.#shutdown.abort();
    this.#listener.close();
    const links = [...this.#links.values()];
    this.#links.clear();
    for (const inbound of this.#inbound) inbound.stream.close();
    await Promise.all([this.#acceptLoop, ...links.map((l) => l.close())]);
    // Tasks may finish (and remove themselves) while we wait, so loop until none is left.
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
    this.#log.info("transport: closed");
  }

  #track(p: Promise<void>): void {
    this.#tasks.add(p);
    p.finally(() => this.#tasks.delete(p));
  }

  async #runAccept(): Promise<void> {
    const maxInbound = this.#opts.maxInboundConnections ?? DEFAULT_MAX_INBOUND_CONNECTIONS;
    while (!this.#closing) {
      let stream: ByteStream;
      try {
        stream = await this.#listener.accept();
      } catch (e) {
        if (this.#closing) return;
        this.#log.warn("transport: accept failed", { error: _asError(e) });
        await abortableSleep(ACCEPT_ERROR_PAUSE_MS, this.#shutdown.signal);
        continue;
      }
      if (this.#closing) {
        stream.close();
        return;
      }
      if (this.#inbound.size >= maxInbound) {
        this.#log.warn("transport: too many inbound connections, refusing", {
          remote: stream.remote,
          limit: maxInbound,
        });
        stream.close();
        continue;
      }
      this.#track(this.#serveInbound(stream));
    }
  }

  /** Reads one inbound connection: hello first, then frames until it ends or is refused. */
  async #serveInbound(stream: ByteStream): Promise<void> {
    const conn: _Inbound = { stream, node: null };
    this.#inbound.add(conn);
    // Until the hello is accepted the limit is the hello's size, so a stranger cannot make
    // us buffer a large "frame" before proving anything.
    const decoder = new FrameDecoder({ maxFrameBytes: MAX_HELLO_BYTES });
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    let refused: { reason: string; detail?: string; node?: NodeId } | null = null;
    const helloTimeoutMs = this.#opts.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
    const helloTimer = setTimeout(() => {
      refused ??= { reason: "hello_timeout", detail: `no hello within ${helloTimeoutMs}ms` };
      stream.close();
    }, helloTimeoutMs);
    try {
      reading: while (true) {
        let n: number | null;
        try {
          n = await stream.read(buf);
        } catch (e) {
          if (!this.#closing && conn.node !== null) {
            this.#log.debug("transport: inbound read ended", {
              peer: conn.node,
              error: _asError(e),
            });
          }
          break;
        }
        if (n === null) {
          if (decoder.midFrame) {
            refused ??= { reason: "truncated", detail: "stream ended inside a frame" };
          }
          break;
        }
        decoder.push(buf.subarray(0, n));
        while (true) {
          const r = decoder.next();
          if (r.kind === "need_more") break;
          if (r.kind === "error") {
            refused ??= {
              reason: r.reason === "oversize" ? "frame_too_large" : "zero_length_frame",
              detail: `length prefix ${r.length}, limit ${r.maxFrameBytes}`,
            };
            break reading;
          }
          if (conn.node === null) {
            const verdict = this.#checkHello(r.frame, stream);
            if (!verdict.ok) {
              refused ??= verdict;
              break reading;
            }
            clearTimeout(helloTimer);
            conn.node = verdict.node;
            this.#skewed.delete(verdict.node);
            this.#inboundByNode.get(verdict.node)?.stream.close();
            this.#inboundByNode.set(verdict.node, conn);
            decoder.maxFrameBytes = this.#opts.maxFrameBytes;
            this.#log.info("transport: inbound connected", {
              peer: verdict.node,
              remote: stream.remote,
            });
            continue;
          }
          const link = this.#links.get(conn.node);
          // The peer was removed while this chunk was being decoded.
          if (!link) break reading;
          link.stats.receivedFrames++;
          link.stats.receivedBytes += r.frame.length;
          try {
            this.#onFrame(conn.node, r.frame);
          } catch (e) {
            this.#log.error("transport: frame handler threw", {
              peer: conn.node,
              error: _asError(e),
            });
          }
        }
      }
    } finally {
      clearTimeout(helloTimer);
      stream.close();
      this.#inbound.delete(conn);
      if (conn.node !== null && this.#inboundByNode.get(conn.node) === conn) {
        this.#inboundByNode.delete(conn.node);
      }
    }
    if (refused !== null && !this.#closing) {
      const r: { reason: string; detail?: string; node?: NodeId } = refused;
      const fields = {
        remote: stream.remote,
        peer: conn.node ?? r.node,
        reason: r.reason,
        detail: r.detail,
      };
      if (r.reason === "hello_clock_skew" && r.node !== undefined) {
        // Retrying does not fix a clock: said at error, naming the peer and the gap, once
        // until that peer's clock is right again (it redials every few seconds).
        const first = !this.#skewed.has(r.node);
        this.#skewed.add(r.node);
        const msg = "transport: refused peer, clocks too far apart";
        if (first) this.#log.error(msg, fields);
        else this.#log.debug(msg, fields);
      } else {
        this.#log.warn("transport: closed inbound connection", fields);
      }
    }
  }

  #checkHello(
    payload: Uint8Array,
    stream: ByteStream,
  ): { ok: true; node: NodeId } | { ok: false; reason: string; detail: string; node?: NodeId } {
    const h = decodeHello(payload);
    if (!h.ok) return { ok: false, reason: `hello_${h.reason}`, detail: h.detail };
    const { node, clusterId } = h.hello;
    if (clusterId !== this.#opts.clusterId) {
      return {
        ok: false,
        reason: "hello_cluster_mismatch",
        detail: `cluster ${JSON.stringify(clusterId)}, expected ${
          JSON.stringify(this.#opts.clusterId)
        }`,
      };
    }
    if (node === this.#opts.self) {
      return { ok: false, reason: "hello_from_self", detail: `node ${node} is this node` };
    }
    if (!this.#links.has(node)) {
      return { ok: false, reason: "hello_unknown_peer", detail: `node ${node} is not a peer` };
    }
    const authorize = this.#opts.authorizePeer ?? allowAnyPeer;
    if (!authorize(node, stream.peerIdentity(), "inbound")) {
      return {
        ok: false,
        reason: "hello_identity_rejected",
        detail: `channel identity does not match ${node}`,
      };
    }
    if (h.hello.sentAtMs !== undefined) {
      const now = (this.#opts.now ?? Date.now)();
      const bound = this.#opts.maxClockSkewMs ?? MAX_PEER_CLOCK_SKEW_MS;
      const problem = clockSkewProblem(node, h.hello.sentAtMs, now, bound);
      if (problem !== null) {
        return { ok: false, reason: "hello_clock_skew", detail: problem, node };
      }
    }
    return { ok: true, node };
  }
}

function _validate(o: TransportOptions): void {
  const posInt = (name: string, v: number | undefined, max = Number.MAX_SAFE_INTEGER) => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < 1 || v > max) {
      throw new RangeError(`transport: ${name} must be an integer in 1..${max}, got ${v}`);
    }
  };
  posInt("maxQueuedFrames", o.maxQueuedFrames);
  posInt("maxQueuedBytes", o.maxQueuedBytes);
  posInt("maxQueueAgeMs", o.maxQueueAgeMs);
  posInt("maxFrameBytes", o.maxFrameBytes, MAX_U32);
  posInt("dialTimeoutMs", o.dialTimeoutMs);
  posInt("helloTimeoutMs", o.helloTimeoutMs);
  posInt("maxInboundConnections", o.maxInboundConnections);
  posInt("maxClockSkewMs", o.maxClockSkewMs);
  const { baseMs, maxMs } = o.reconnect;
  if (!(baseMs > 0) || !(maxMs >= baseMs)) {
    throw new RangeError(
      `transport: reconnect needs 0 < baseMs <= maxMs, got baseMs=${baseMs} maxMs=${maxMs}`,
    );
  }
}

function _asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
