/**
 * The outbound half of the transport: one connection per peer with its own writer loop.
 *
 * `enqueue` never blocks: it appends to a bounded queue or reports a drop. The writer loop
 * dials (with backoff and jitter), sends the hello, then coalesces queued frames into large
 * writes. Raft tolerates loss, so a batch in flight when a connection breaks is dropped rather
 * than replayed on the next connection.
 * @module
 */

import type { NodeId } from "../../common/ids.ts";
import type { Logger } from "../../common/log.ts";
import { backoffDelayMs, type BackoffOptions } from "./backoff.ts";
import { encodeFrame, FRAME_HEADER_BYTES, writeFrameHeader } from "./frame.ts";
import { FrameQueue } from "./frame_queue.ts";
import { encodeHello } from "./hello.ts";
import {
  type ByteStream,
  type Dialer,
  type PeerAddress,
  type PeerAuthorizer,
  writeAll,
} from "./stream.ts";
import { abortableSleep } from "../../common/sleep.ts";

/** Size of the reusable buffer small frames are copied into before one write call. */
export const WRITE_BUFFER_BYTES = 256 * 1024;

/** Frames at least this large are written straight from the caller's buffer, not copied. */
export const DIRECT_WRITE_MIN_BYTES = 64 * 1024;

/** Bytes written per batch before the queue is trimmed, so senders see space free up. */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** Bytes read per call on an outbound connection, where the peer should never send anything. */
const WATCH_READ_BYTES = 64;

/** Counters and state of one peer, as reported by `Transport.stats()`. */
export interface PeerStats {
  /** Whether the outbound connection is up (dialled and hello sent). */
  connected: boolean;
  /** Whether an authenticated inbound connection from this peer is open. */
  inboundConnected: boolean;
  /** Frames waiting in the outbound queue, including the batch being written. */
  queued: number;
  /** Payload bytes waiting in the outbound queue. */
  queuedBytes: number;
  /** Frames refused by a full queue or lost with a broken connection. */
  dropped: number;
  /** Frames fully handed to the connection. */
  sentFrames: number;
  /** Frames received from this peer. */
  receivedFrames: number;
  /** Payload bytes fully handed to the connection. */
  sentBytes: number;
  /** Payload bytes received from this peer. */
  receivedBytes: number;
  /** Outbound connections established so far. */
  connects: number;
}

/** Everything a link needs; the transport fills it from its own options. */
export interface PeerLinkOptions {
  readonly self: NodeId;
  readonly clusterId: string;
  readonly peer: NodeId;
  readonly addr: PeerAddress;
  readonly maxQueuedFrames: number;
  readonly maxQueuedBytes: number;
  readonly dialer: Dialer;
  readonly authorizePeer: PeerAuthorizer;
  readonly logger: Logger;
  readonly reconnect: BackoffOptions;
  readonly random: () => number;
  readonly now: () => number;
  /** Frames older than this when their turn comes are dropped instead of sent. */
  readonly maxQueueAgeMs: number;
  readonly dialTimeoutMs: number;
}

/** One peer's outbound queue, connection and writer loop. */
export class PeerLink {
  /** The node this link sends to. */
  readonly peer: NodeId;
  /** Counters; `inboundConnected` and `received*` are kept by the transport, the queue gauges by `snapshot()`. */
  readonly stats: PeerStats;

  readonly #opts: PeerLinkOptions;
  readonly #log: Logger;
  readonly #queue: FrameQueue;
  readonly #wake = new _Wake();
  #writeBuffer: Uint8Array | null = null;
  #addr: PeerAddress;
  // Aborted when the current connection attempt must stop: on close or an address change.
  #interrupt = new AbortController();
  #stream: ByteStream | null = null;
  #closed = false;
  #dropping = false;
  #failing = false;
  #done: Promise<void> = Promise.resolve();

  /** Creates a link; call `start()` to begin dialling. */
  constructor(opts: PeerLinkOptions) {
    this.#opts = opts;
    this.peer = opts.peer;
    this.#addr = opts.addr;
    this.#log = opts.logger.with({ peer: opts.peer });
    this.#queue = new FrameQueue(opts.maxQueuedFrames, opts.maxQueuedBytes);
    this.stats = {
      connected: false,
      inboundConnected: false,
      queued: 0,
      queuedBytes: 0,
      dropped: 0,
      sentFrames: 0,
      receivedFrames: 0,
      sentBytes: 0,
      receivedBytes: 0,
      connects: 0,
    };
  }

  /** A copy of the counters with the live queue gauges. */
  snapshot(): PeerStats {
    return { ...this.stats, queued: this.#queue.size, queuedBytes: this.#queue.bytes };
  }

  /** The address currently dialled. */
  get addr(): PeerAddress {
    return this.#addr;
  }

  /** Starts the writer loop. */
  start(): void {
    this.#done = this.#run().catch((e) => {
      // The loop handles operating errors itself; reaching here is a bug, but must not crash.
      this.#log.error("transport: writer loop failed", { error: _asError(e) });
    });
  }

  /** Queues `frame` for sending; false when the queue is full or the link is closed. */
  enqueue(frame: Uint8Array): boolean {
    if (this.#closed) return false;
    if (!this.#queue.push(frame, this.#opts.now())) {
      this.stats.dropped++;
      if (!this.#dropping) {
        this.#dropping = true;
        this.#log.warn("transport: peer queue full, dropping frames", {
          queued: this.#queue.size,
          queued_bytes: this.#queue.bytes,
        });
      }
      return false;
    }
    this.#dropping = false;
    this.#wake.notify();
    return true;
  }

  /** Points the link at a new address, dropping the current connection. */
  setAddress(addr: PeerAddress): void {
    if (addr.hostname === this.#addr.hostname && addr.port === this.#addr.port) return;
    this.#log.info("transport: peer address changed", {
      from: _fmt(this.#addr),
      to: _fmt(addr),
    });
    this.#addr = addr;
    const old = this.#interrupt;
    this.#interrupt = new AbortController();
    old.abort();
    this.#stream?.close();
    this.#wake.notify();
  }

  /**
   * Drops the current connection and dials again. For a connection that a partition left
   * half-dead: its writes still succeed into the kernel's buffer, and after the heal TCP sends
   * them only at its next retransmission, seconds later; a fresh connection is up in a round trip.
   */
  reconnect(reason: string): void {
    if (this.#stream === null || this.#closed) return;
    this.#log.info("transport: reconnecting", { addr: _fmt(this.#addr), reason });
    this.#stream.close();
    this.#wake.notify();
  }

  /** Stops the writer, closes the connection and discards queued frames. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#interrupt.abort();
      this.#stream?.close();
      this.#wake.notify();
    }
    await this.#done;
    this.#queue.clear();
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#closed) {
      const interrupt = this.#interrupt;
      const stream = await this.#connect(this.#addr, interrupt.signal);
      if (stream !== null) {
        const startedAt = this.#opts.now();
        await this.#pump(stream, interrupt.signal);
        // A connection that stayed up for a while resets the backoff; one that dies right
        // after the hello (e.g. the peer rejects us) keeps growing it.
        if (this.#opts.now() - startedAt >= this.#opts.reconnect.maxMs) attempt = 0;
      }
      if (this.#closed) break;
      if (interrupt.signal.aborted) {
        // A new address deserves an immediate first try.
        attempt = 0;
        continue;
      }
      const delay = backoffDelayMs(attempt, this.#opts.reconnect, this.#opts.random);
      attempt++;
      await abortableSleep(delay, interrupt.signal);
    }
  }

  /** Dials, checks the channel identity and sends the hello; null on any failure. */
  async #connect(addr: PeerAddress, signal: AbortSignal): Promise<ByteStream | null> {
    const dialAbort = new AbortController();
    const timer = setTimeout(
      () => dialAbort.abort(new Error(`dial timeout after ${this.#opts.dialTimeoutMs}ms`)),
      this.#opts.dialTimeoutMs,
    );
    const onAbort = () => dialAbort.abort(new Error("link interrupted"));
    signal.addEventListener("abort", onAbort, { once: true });
    let stream: ByteStream;
    try {
      stream = await _raceAbort(
        this.#opts.dialer.dial(addr, dialAbort.signal, this.peer),
        dialAbort.signal,
      );
    } catch (e) {
      if (!signal.aborted) this.#noteFailure("dial failed", addr, e);
      return null;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
    if (signal.aborted) {
      stream.close();
      return null;
    }
    if (!this.#opts.authorizePeer(this.peer, stream.peerIdentity(), "outbound")) {
      this.#noteFailure(
        "peer identity rejected",
        addr,
        new Error(`identity does not match ${this.peer}`),
      );
      stream.close();
      return null;
    }
    this.#stream = stream;
    try {
      // Stamped now, not at construction, so the peer can compare clocks (clock_skew.ts).
      const hello = encodeHello(this.#opts.self, this.#opts.clusterId, this.#opts.now());
      await writeAll(stream, encodeFrame(hello));
    } catch (e) {
      this.#stream = null;
      stream.close();
      if (!signal.aborted) this.#noteFailure("hello write failed", addr, e);
      return null;
    }
    return stream;
  }

  /** Logs the first failure of a run at warn and repeats at debug, so a dead peer is not spam. */
  #noteFailure(what: string, addr: PeerAddress, e: unknown): void {
    const fields = { addr: _fmt(addr), error: _asError(e) };
    if (this.#failing) {
      this.#log.debug(`transport: ${what}`, fields);
    } else {
      this.#failing = true;
      this.#log.warn(`transport: ${what}`, fields);
    }
  }

  /** Writes queued frames until the connection breaks, the link is interrupted or closed. */
  async #pump(stream: ByteStream, signal: AbortSignal): Promise<void> {
    this.#failing = false;
    this.stats.connected = true;
    this.stats.connects++;
    this.#log.info("transport: connected", { addr: stream.remote });
    let ended: string | null = null;
    // The peer never sends on this connection, so a read completing means it closed or broke
    // the protocol; watching for that redials at once instead of at the next failed write.
    const watcher = (async () => {
      const scratch = new Uint8Array(WATCH_READ_BYTES);
      try {
        const n = await stream.read(scratch);
        ended ??= n === null ? "closed by peer" : "peer sent unexpected bytes";
      } catch (e) {
        ended ??= `read failed: ${_asError(e).message}`;
      }
      this.#wake.notify();
    })();
    try {
      while (ended === null && !signal.aborted) {
        if (this.#queue.size === 0) {
          await this.#wake.wait();
          continue;
        }
        // A frame that waited out a reconnect is stale (a Raft message from a term that may be
        // over); sending it would only mislead a restarted peer, so it is dropped.
        const stale = this.#queue.dropQueuedBefore(this.#opts.now() - this.#opts.maxQueueAgeMs);
        if (stale > 0) {
          this.stats.dropped += stale;
          if (this.#queue.size === 0) continue;
        }
        await this.#writeBatch(stream);
      }
    } catch (e) {
      ended ??= `write failed: ${_asError(e).message}`;
    } finally {
      this.#stream = null;
      stream.close();
      await watcher;
      this.stats.connected = false;
    }
    if (!signal.aborted) {
      this.#log.warn("transport: connection lost", { addr: stream.remote, reason: ended });
    }
  }

  /** Writes up to MAX_BATCH_BYTES of queued frames, coalescing small ones into few writes. */
  async #writeBatch(stream: ByteStream): Promise<void> {
    const q = this.#queue;
    const buf = this.#writeBuffer ??= new Uint8Array(WRITE_BUFFER_BYTES);
    let fill = 0;
    let taken = 0;
    let batchBytes = 0;
    let payloadBytes = 0;
    try {
      while (taken < q.size && batchBytes < MAX_BATCH_BYTES) {
        const frame = q.peek(taken)!;
        taken++;
        if (fill + FRAME_HEADER_BYTES > buf.length) {
          await writeAll(stream, buf.subarray(0, fill));
          fill = 0;
        }
        writeFrameHeader(buf, fill, frame.length);
        fill += FRAME_HEADER_BYTES;
        if (frame.length >= DIRECT_WRITE_MIN_BYTES || frame.length > buf.length - fill) {
          await writeAll(stream, buf.subarray(0, fill));
          fill = 0;
          await writeAll(stream, frame);
        } else {
          buf.set(frame, fill);
          fill += frame.length;
        }
        batchBytes += FRAME_HEADER_BYTES + frame.length;
        payloadBytes += frame.length;
      }
      if (fill > 0) await writeAll(stream, buf.subarray(0, fill));
    } catch (e) {
      // Part of the batch may have reached the peer; Raft copes with loss, so drop it all.
      q.drop(taken);
      this.stats.dropped += taken;
      throw e;
    }
    q.drop(taken);
    this.stats.sentFrames += taken;
    this.stats.sentBytes += payloadBytes;
  }
}

/** A one-waiter wake-up flag: a notify with no waiter is remembered for the next wait. */
class _Wake {
  #resolve: (() => void) | null = null;
  #pending = false;

  notify(): void {
    const r = this.#resolve;
    if (r) {
      this.#resolve = null;
      r();
    } else {
      this.#pending = true;
    }
  }

  wait(): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((r) => (this.#resolve = r));
  }
}

/** Rejects when `signal` aborts even if `p` never settles; a late stream is closed. */
function _raceAbort(p: Promise<ByteStream>, signal: AbortSignal): Promise<ByteStream> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error("aborted"));
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (s) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) s.close();
        else resolve(s);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function _asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function _fmt(a: PeerAddress): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/** Formats an address as `host:port` (IPv6 in brackets), for logs. */
export const formatAddress: (a: PeerAddress) => string = _fmt;
