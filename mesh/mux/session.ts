/**
 * A skein-mux/1 session: many {@linkcode MuxStream}s over one connection between two proxies.
 * Each stream behaves like its own `Deno.Conn` (reads, writes, half-close, close), so the
 * forwarder and the pool run over streams unchanged. What it buys is batching: the frames that
 * all streams queue while the event loop works through one batch of completed reads leave in a
 * single write, so the mesh hop costs one TLS record and one system call per batch instead of
 * one per request.
 *
 * Flow control is per stream: a sender may have at most {@linkcode STREAM_WINDOW_BYTES} unread
 * bytes in flight, and the receiver returns credit as its reader consumes them. So one slow
 * reader never stalls the connection's read loop, and a session buffers at most
 * `maxStreams × STREAM_WINDOW_BYTES`. A peer that breaks the protocol loses the whole session.
 *
 * This module is the session (stream table, write batching, read loop and frame dispatch,
 * GoAway, pings, stall and idle timers); a stream's own side is in `stream.ts`, the constants
 * and shapes both share in `types.ts`, the wire format in `frame.ts`.
 * @module
 */
import {
  FRAME_HEADER_BYTES,
  FrameType,
  type FrameTypeValue,
  MAX_DATA_FRAME_BYTES,
  MAX_FRAME_PAYLOAD_BYTES,
  MuxProtocolError,
  PING_PAYLOAD_BYTES,
  readFrameHeader,
  readWindowIncrement,
  writeFrameHeader,
} from "./frame.ts";
import { MuxStream } from "./stream.ts";
import {
  CLOSE_FLUSH_TIMEOUT_MS,
  DEFAULT_GOAWAY_GRACE_MS,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_STREAMS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_PING_TIMEOUT_MS,
  DEFAULT_SERVER_IDLE_SESSION_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  MAX_QUEUED_BYTES_FACTOR,
  MAX_STREAM_ID,
  type MuxSessionStats,
  type MuxTransport,
  type StreamHost,
} from "./types.ts";

export * from "./types.ts";
export { MuxStream } from "./stream.ts";

/** Options of {@linkcode MuxSession}. */
export interface MuxSessionOptions {
  /** The client opens streams; the server accepts them. */
  role: "client" | "server";
  /** The peer's verified SPIFFE id, shown by every stream. */
  peerIdentity: string | null;
  /** Called with each stream the peer opens (server role). */
  onStream?: (s: MuxStream) => void;
  /** Called once when the session has ended, for whatever reason. */
  onClose?: (err: Error) => void;
  /** @default DEFAULT_MAX_STREAMS */
  maxStreams?: number;
  /** @default DEFAULT_MAX_BUFFERED_BYTES */
  maxBufferedBytes?: number;
  /** @default DEFAULT_GOAWAY_GRACE_MS */
  goAwayGraceMs?: number;
  /** Writers stuck this long on a congested session end it. @default DEFAULT_STALL_TIMEOUT_MS */
  stallTimeoutMs?: number;
  /**
   * Server role: a session with no stream for this long is closed (a caller that went quiet,
   * or one that only holds sessions open). 0 = never. @default DEFAULT_SERVER_IDLE_SESSION_MS
   */
  idleSessionMs?: number;
  /** Client role: see {@linkcode DEFAULT_PING_INTERVAL_MS}; 0 = no pings. @default DEFAULT_PING_INTERVAL_MS */
  pingIntervalMs?: number;
  /** Client role: see {@linkcode DEFAULT_PING_TIMEOUT_MS}. @default DEFAULT_PING_TIMEOUT_MS */
  pingTimeoutMs?: number;
}

/** The first size of each of a session's two outgoing buffers (they grow as needed). */
function _initialBuffer(): Uint8Array {
  return new Uint8Array(16 * 1024);
}

/** The payload of every Ping (the Pong echoes it; nothing is matched on it). */
const _PING = new Uint8Array(PING_PAYLOAD_BYTES);

/** One multiplexed connection between two proxies. */
export class MuxSession implements StreamHost {
  /** The peer's verified SPIFFE id. */
  readonly peerIdentity: string | null;
  readonly #t: MuxTransport;
  readonly #role: "client" | "server";
  readonly #onStream: ((s: MuxStream) => void) | undefined;
  readonly #onClose: ((err: Error) => void) | undefined;
  readonly #maxStreams: number;
  readonly #maxBuffered: number;
  readonly #goAwayGraceMs: number;
  readonly #stallTimeoutMs: number;
  /** Queued bytes at which the peer is given up on (one data frame may go past the cap). */
  readonly #hardCap: number;
  readonly #idleSessionMs: number;
  #stallTimer: ReturnType<typeof setTimeout> | null = null;
  /** Client role: armed only while streams are open (an idle session costs no timer). */
  #pingTimer: ReturnType<typeof setInterval> | null = null;
  readonly #pingMs: number;
  readonly #pingTimeoutMs: number;
  /** Frames received so far, and as of the last ping check: any frame proves the peer alive. */
  #received = 0;
  #receivedAtCheck = 0;
  /** Checks since an unanswered Ping went out; -1 when none is outstanding. */
  #pingChecks = -1;
  #idleTimer: ReturnType<typeof setTimeout> | null = null;
  #graceOver = false;
  readonly #streams = new Map<number, MuxStream>();
  #nextId = 1;
  #lastPeerId = 0;
  #error: Error | null = null;
  #goingAway = false;
  #retired = false;
  /** A rebalancing GoAway: streams opened before the grace time ends are still served. */
  #serveUntilGrace = false;
  #peerGoingAway = false;
  #out = _initialBuffer();
  #spare = _initialBuffer();
  #outLen = 0;
  #flushing = false;
  #scheduled = false;
  #drainWaiters: (() => void)[] = [];
  readonly #stats = { opened: 0, flushes: 0, frames: 0 };

  /** Starts reading frames from `t`. */
  constructor(t: MuxTransport, opts: MuxSessionOptions) {
    this.#t = t;
    this.#role = opts.role;
    this.peerIdentity = opts.peerIdentity;
    this.#onStream = opts.onStream;
    this.#onClose = opts.onClose;
    this.#maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.#maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#goAwayGraceMs = opts.goAwayGraceMs ?? DEFAULT_GOAWAY_GRACE_MS;
    this.#stallTimeoutMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.#hardCap = this.#maxBuffered * MAX_QUEUED_BYTES_FACTOR + FRAME_HEADER_BYTES +
      MAX_DATA_FRAME_BYTES;
    this.#idleSessionMs = opts.role === "server"
      ? opts.idleSessionMs ?? DEFAULT_SERVER_IDLE_SESSION_MS
      : 0;
    this.#armIdle(0);
    this.#pingMs = opts.role === "client" ? opts.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS : 0;
    this.#pingTimeoutMs = opts.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    if (t.pushTo !== undefined) {
      t.pushTo(
        (c) => this.#feed(c),
        (err) => this.#fail(err ?? new Deno.errors.UnexpectedEof("mux peer closed the connection")),
      );
    } else {
      void this.#readLoop();
    }
  }

  /** Whether the session has ended. */
  get closed(): boolean {
    return this.#error !== null;
  }

  /**
   * Stops handing out this session's streams (client role) without ending the calls on it:
   * no new stream opens here, pooled streams are not reused, and the session can be closed
   * once its last stream ends. For a session whose certificate nears its expiry, when the
   * callee would cut it mid-call.
   */
  retire(): void {
    this.#retired = true;
  }

  /** Whether {@linkcode MuxSession.retire} was called. */
  get retired(): boolean {
    return this.#retired;
  }

  /** Whether new streams may be opened here (client role). */
  get usable(): boolean {
    return this.#error === null && !this.#peerGoingAway && !this.#goingAway && !this.#retired &&
      this.#nextId <= MAX_STREAM_ID && this.#streams.size < this.#maxStreams;
  }

  /** Whether the peer said it takes no new streams here (client role: dial another session). */
  get peerGoingAway(): boolean {
    return this.#peerGoingAway;
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** The transport's local address. */
  get localAddr(): Deno.Addr {
    return this.#t.localAddr;
  }

  /** The transport's remote address. */
  get remoteAddr(): Deno.Addr {
    return this.#t.remoteAddr;
  }

  /** A snapshot of the counters. */
  stats(): MuxSessionStats {
    return { streams: this.#streams.size, ...this.#stats };
  }

  /** Opens a new stream (client role); throws when the session cannot take one. */
  open(): MuxStream {
    if (this.#role !== "client") throw new Error("only the client side opens streams");
    if (this.#error !== null) throw new Deno.errors.ConnectionReset(this.#error.message);
    if (!this.usable) throw new Deno.errors.ConnectionRefused("session takes no new streams");
    const id = this.#nextId++;
    const s = new MuxStream(this, id);
    this.#streams.set(id, s);
    this.#stats.opened++;
    this._queue(FrameType.Open, id, null, 0, 0);
    if (this.#pingTimer === null && this.#pingMs > 0) this.#armPing();
    return s;
  }

  /** Whether the ping timer is armed (tests: it runs only while streams are open). */
  get pinging(): boolean {
    return this.#pingTimer !== null;
  }

  #armPing(): void {
    // Checks start afresh: what arrived while idle says nothing about the peer now.
    this.#receivedAtCheck = this.#received;
    this.#pingChecks = -1;
    this.#pingTimer = setInterval(
      () => this.#checkPeer(this.#pingMs, this.#pingTimeoutMs),
      this.#pingMs,
    );
    Deno.unrefTimer(this.#pingTimer);
  }

  /**
   * Announces that no new streams are taken, and the session closes when its last stream has
   * ended and the grace time has passed. `"drain"` (the server is stopping) refuses streams
   * opened from now on, which is safe to retry elsewhere; `"rebalance"` (this session should go
   * to another worker) still serves the streams the client opens before the GoAway reaches it,
   * so moving costs no call, and refuses only those arriving after the grace time.
   */
  goAway(mode: "drain" | "rebalance" = "drain"): void {
    if (this.#error !== null || this.#goingAway) return;
    this.#goingAway = true;
    this.#serveUntilGrace = mode === "rebalance";
    this._queue(FrameType.GoAway, 0, null, 0, 0);
    const t = setTimeout(() => {
      this.#graceOver = true;
      if (this.#streams.size === 0) void this.#closeAfterFlush();
    }, this.#goAwayGraceMs);
    Deno.unrefTimer(t);
  }

  /** Ends the session now: every stream fails. */
  close(): void {
    this.#fail(new Deno.errors.ConnectionReset("mux session closed"));
  }

  // ---- writing ----

  /** Whether queued bytes are over the cap, so writers should wait for a flush. */
  get _congested(): boolean {
    return this.#outLen >= this.#maxBuffered;
  }

  /** Resolves once queued bytes are under the cap again (or the session ended). */
  _drained(): Promise<void> {
    if (!this._congested || this.#error !== null) return Promise.resolve();
    if (this.#stallTimer === null) this.#armStall(this.#stats.flushes);
    return new Promise((r) => this.#drainWaiters.push(r));
  }

  /** While writers wait: a peer that completes no write in the stall time loses the session. */
  #armStall(flushesBefore: number): void {
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = null;
      if (this.#error !== null || this.#drainWaiters.length === 0) return;
      if (this.#stats.flushes === flushesBefore && this.#flushing) {
        this.#fail(
          new Deno.errors.TimedOut(`mux peer read nothing for ${this.#stallTimeoutMs} ms`),
        );
      } else {
        this.#armStall(this.#stats.flushes);
      }
    }, this.#stallTimeoutMs);
    Deno.unrefTimer(this.#stallTimer);
  }

  /**
   * Server role: closes the session once a whole idle period passed with no stream open and
   * none opened (so between one and two periods after its last stream; nothing per call).
   */
  #armIdle(openedBefore: number): void {
    if (this.#idleSessionMs <= 0 || this.#error !== null) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = null;
      if (this.#error !== null) return;
      if (this.#streams.size === 0 && this.#stats.opened === openedBefore) {
        this.#fail(new Deno.errors.ConnectionReset("mux session idle"));
      } else {
        this.#armIdle(this.#stats.opened);
      }
    }, this.#idleSessionMs);
    Deno.unrefTimer(this.#idleTimer);
  }

  /** One ping check: see {@linkcode DEFAULT_PING_INTERVAL_MS}. */
  #checkPeer(intervalMs: number, timeoutMs: number): void {
    if (this.#error !== null) return;
    if (this.#received !== this.#receivedAtCheck) {
      this.#receivedAtCheck = this.#received;
      this.#pingChecks = -1;
      return;
    }
    if (this.#pingChecks < 0) {
      // An idle session waits on nothing: the timer stops, and its next stream arms it again.
      if (this.#streams.size === 0) {
        clearInterval(this.#pingTimer!);
        this.#pingTimer = null;
        return;
      }
      this.#pingChecks = 0;
      this._queue(FrameType.Ping, 0, _PING, 0, PING_PAYLOAD_BYTES);
      return;
    }
    // Counted in checks, not clock time: a stall of this event loop is not the peer's silence.
    if (++this.#pingChecks * intervalMs >= timeoutMs) {
      this.#fail(
        new Deno.errors.TimedOut(
          `mux peer answered no ping for ${this.#pingChecks * intervalMs} ms`,
        ),
      );
    }
  }

  /** Queues one frame; the payload is copied, so the caller may reuse `p` at once. */
  _queue(
    type: FrameTypeValue,
    stream: number,
    p: Uint8Array | null,
    off: number,
    len: number,
  ): void {
    if (this.#error !== null) return;
    const need = this.#outLen + FRAME_HEADER_BYTES + len;
    if (need > this.#hardCap) {
      this.#fail(
        new MuxProtocolError(`mux peer does not read: over ${need} bytes queued for it`),
      );
      return;
    }
    if (need > this.#out.length) {
      let size = this.#out.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#out.subarray(0, this.#outLen));
      this.#out = next;
    }
    writeFrameHeader(this.#out, this.#outLen, type, stream, len);
    if (len > 0) this.#out.set(p!.subarray(off, off + len), this.#outLen + FRAME_HEADER_BYTES);
    this.#outLen = need;
    this.#stats.frames++;
    if (!this.#flushing && !this.#scheduled) {
      this.#scheduled = true;
      // Two microtask hops: every stream woken by the same batch of completed reads queues its
      // frames before this write goes out, so they share one TLS record and one system call.
      queueMicrotask(() => queueMicrotask(() => void this.#flush()));
    }
  }

  /** Queues a Window frame returning `n` bytes of credit on `stream`. */
  _queueWindow(stream: number, n: number): void {
    const b = new Uint8Array(4);
    b[0] = n >>> 24;
    b[1] = (n >>> 16) & 0xff;
    b[2] = (n >>> 8) & 0xff;
    b[3] = n & 0xff;
    this._queue(FrameType.Window, stream, b, 0, 4);
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      const queued = this.#t.writeQueued?.bind(this.#t);
      while (this.#outLen > 0 && this.#error === null) {
        if (queued !== undefined) {
          // The transport keeps what it is given, so it gets a copy; no waiting per write.
          const data = this.#out.slice(0, this.#outLen);
          this.#outLen = 0;
          this.#stats.flushes++;
          const drained = queued(data);
          if (drained !== undefined) await drained;
          if (this.#drainWaiters.length > 0 && !this._congested) {
            for (const w of this.#drainWaiters.splice(0)) w();
          }
          continue;
        }
        const data = this.#out.subarray(0, this.#outLen);
        // Double buffering: frames queued while this write runs go into the spare buffer.
        const sent = this.#out;
        this.#out = this.#spare;
        this.#spare = sent;
        this.#outLen = 0;
        this.#stats.flushes++;
        let off = 0;
        while (off < data.length) off += await this.#t.write(data.subarray(off));
        if (this.#drainWaiters.length > 0 && !this._congested) {
          for (const w of this.#drainWaiters.splice(0)) w();
        }
      }
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.#flushing = false;
    }
  }

  async #closeAfterFlush(): Promise<void> {
    const until = performance.now() + CLOSE_FLUSH_TIMEOUT_MS;
    // A peer that stopped reading must not keep this loop, or the session, alive.
    while ((this.#outLen > 0 || this.#flushing) && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
      if (this.#error !== null) return;
    }
    this.#fail(new Deno.errors.ConnectionReset("mux session finished"));
  }

  // ---- reading ----

  async #readLoop(): Promise<void> {
    // Room for the largest frame plus a full read's worth, so compaction always makes space.
    const buf = new Uint8Array(2 * (FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES));
    let pos = 0;
    let filled = 0;
    try {
      while (this.#error === null) {
        const n = await this.#t.read(buf.subarray(filled));
        if (n === null) throw new Deno.errors.UnexpectedEof("mux peer closed the connection");
        filled += n;
        while (true) {
          const h = readFrameHeader(buf, pos, filled);
          if (h === null || filled - pos < FRAME_HEADER_BYTES + h.length) break;
          this.#dispatch(h.type, h.stream, buf, pos + FRAME_HEADER_BYTES, h.length);
          pos += FRAME_HEADER_BYTES + h.length;
        }
        if (pos === filled) {
          pos = filled = 0;
        } else if (buf.length - filled < FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES) {
          buf.copyWithin(0, pos, filled);
          filled -= pos;
          pos = 0;
        }
      }
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Frame bytes of a pushed chunk that did not complete a frame (push mode). */
  #acc: Uint8Array | null = null;
  #accLen = 0;

  /** Parses the frames of a pushed chunk; a partial frame waits in `#acc` for the next. */
  #feed(chunk: Uint8Array): void {
    if (this.#error !== null) return;
    try {
      let off = 0;
      if (this.#accLen === 0) {
        off = this.#parse(chunk, 0, chunk.length);
        if (off === chunk.length) return;
      }
      // Room for the largest frame, so every refill makes progress.
      const acc = this.#acc ??= new Uint8Array(2 * (FRAME_HEADER_BYTES + MAX_FRAME_PAYLOAD_BYTES));
      while (off < chunk.length && this.#error === null) {
        const k = Math.min(acc.length - this.#accLen, chunk.length - off);
        acc.set(chunk.subarray(off, off + k), this.#accLen);
        this.#accLen += k;
        off += k;
        const used = this.#parse(acc, 0, this.#accLen);
        acc.copyWithin(0, used, this.#accLen);
        this.#accLen -= used;
      }
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  /** Dispatches the complete frames in `buf[pos, end)`; returns where the first partial one starts. */
  #parse(buf: Uint8Array, pos: number, end: number): number {
    while (this.#error === null) {
      const h = readFrameHeader(buf, pos, end);
      if (h === null || end - pos < FRAME_HEADER_BYTES + h.length) break;
      this.#dispatch(h.type, h.stream, buf, pos + FRAME_HEADER_BYTES, h.length);
      pos += FRAME_HEADER_BYTES + h.length;
    }
    return pos;
  }

  #dispatch(type: FrameTypeValue, id: number, buf: Uint8Array, off: number, len: number): void {
    this.#received++;
    if (type === FrameType.Open) {
      if (this.#role !== "server") throw new MuxProtocolError("a server opened a stream");
      if (id <= this.#lastPeerId) throw new MuxProtocolError(`stream ${id} reopened`);
      this.#lastPeerId = id;
      const refuse = this.#goingAway && !(this.#serveUntilGrace && !this.#graceOver);
      if (refuse || this.#streams.size >= this.#maxStreams) {
        this._queue(FrameType.Refused, id, null, 0, 0);
        return;
      }
      const s = new MuxStream(this, id);
      this.#streams.set(id, s);
      this.#stats.opened++;
      this.#onStream?.(s);
      return;
    }
    if (type === FrameType.GoAway) {
      this.#peerGoingAway = true;
      return;
    }
    if (type === FrameType.Ping) {
      this._queue(FrameType.Pong, 0, buf, off, len);
      return;
    }
    if (type === FrameType.Pong) return;
    const s = this.#streams.get(id);
    if (s === undefined) {
      // A stream closed here (its frames may still be on the way) or never opened: a peer that
      // uses an id it never opened is broken.
      const known = this.#role === "server" ? id <= this.#lastPeerId : id < this.#nextId;
      if (!known) throw new MuxProtocolError(`frame for unknown stream ${id}`);
      return;
    }
    switch (type) {
      case FrameType.Data:
        s._onData(buf, off, len);
        return;
      case FrameType.Fin:
        s._onFin();
        return;
      case FrameType.Reset:
        s._onReset();
        return;
      case FrameType.Refused:
        if (this.#role !== "client") throw new MuxProtocolError("a client refused a stream");
        s._onRefused();
        return;
      case FrameType.Window:
        s._onWindow(readWindowIncrement(buf, off));
        return;
    }
  }

  /** Forgets a stream closed here. */
  _forget(s: MuxStream): void {
    if (this.#streams.get(s.id) === s) this.#streams.delete(s.id);
    if (this.#graceOver && this.#streams.size === 0) void this.#closeAfterFlush();
  }

  #fail(err: Error): void {
    if (this.#error !== null) return;
    this.#error = err;
    if (this.#stallTimer !== null) clearTimeout(this.#stallTimer);
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    try {
      this.#t.close();
    } catch {
      // Closed already.
    }
    for (const s of [...this.#streams.values()]) s._onSessionError(err);
    this.#streams.clear();
    for (const w of this.#drainWaiters.splice(0)) w();
    this.#onClose?.(err);
  }
}
