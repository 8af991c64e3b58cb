/**
 * One stream of a skein-mux/1 session, behaving like a `Deno.Conn` (reads, writes, half-close,
 * close, refuse), with its side of the per-stream flow control: a receive window it returns
 * credit for as its reader consumes bytes, and send credit its writers wait on.
 * @module
 */
import { FrameType, MAX_DATA_FRAME_BYTES, MuxProtocolError } from "./frame.ts";
import { readableOf, writableOf } from "../conn/io.ts";
import type { RefusableConn } from "../conn/refusable.ts";
import { RECV_CHUNK_BYTES, STREAM_WINDOW_BYTES, type StreamHost } from "./types.ts";

/** A pending read: the caller's buffer and its promise's settle functions. */
interface _Reader {
  p: Uint8Array;
  resolve: (n: number | null) => void;
  reject: (e: Error) => void;
}

/** One stream of a {@linkcode MuxSession}, behaving like a `Deno.Conn`. */
export class MuxStream implements RefusableConn {
  /** The stream id within its session. */
  readonly id: number;
  readonly #s: StreamHost;
  /**
   * Received bytes not read yet: views into copies, read from `#qHead` on. Small frames are
   * copied into the spare room of the last copy, so memory follows the bytes (which the window
   * bounds), not the number of frames a peer chops them into.
   */
  #queue: Uint8Array[] = [];
  #qHead = 0;
  #queued = 0;
  /** Bytes used of the backing buffer of the last queued view (its spare room follows). */
  #tailUsed = 0;
  #reader: _Reader | null = null;
  /** Bytes the peer may still send before it needs more credit. */
  #recvAllowed = STREAM_WINDOW_BYTES;
  /** Bytes read since the last Window frame. */
  #unacked = 0;
  /** Bytes we may still send. */
  #credit = STREAM_WINDOW_BYTES;
  #creditWaiters: (() => void)[] = [];
  #finSent = false;
  #finRecv = false;
  #resetRecv = false;
  #refused = false;
  #closed = false;
  #error: Error | null = null;

  /** @internal Created by the session. */
  constructor(s: StreamHost, id: number) {
    this.#s = s;
    this.id = id;
  }

  /** The peer's verified SPIFFE id (the session's). */
  get peerIdentity(): string | null {
    return this.#s.peerIdentity;
  }

  /** @internal Copies holding received bytes not read yet (tests check that frames share them). */
  get _queuedCopies(): number {
    return this.#queue.length - this.#qHead;
  }

  /**
   * Whether the stream may carry another request after this one: not once its session has
   * ended or the peer sent GoAway (the pool then closes it instead of keeping it, so the
   * calls move to the caller's next session).
   */
  get reusable(): boolean {
    return !this.#s.closed && !this.#s.peerGoingAway && !this.#s.retired;
  }

  /** The session's local address. */
  get localAddr(): Deno.Addr {
    return this.#s.localAddr;
  }

  /** The session's remote address. */
  get remoteAddr(): Deno.Addr {
    return this.#s.remoteAddr;
  }

  /** Reads into `p`; null at EOF. One read may be outstanding, as with `Deno.Conn`. */
  read(p: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("stream closed"));
    if (this.#reader !== null) return Promise.reject(new Deno.errors.Busy("read in progress"));
    if (this.#queued > 0) return Promise.resolve(this.#take(p));
    if (this.#finRecv) return Promise.resolve(null);
    if (this.#resetRecv) return Promise.reject(this.#resetError());
    if (this.#error !== null) {
      return Promise.reject(new Deno.errors.ConnectionReset(this.#error.message));
    }
    if (p.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => (this.#reader = { p, resolve, reject }));
  }

  #take(p: Uint8Array): number {
    let n = 0;
    const q = this.#queue;
    while (n < p.length && this.#qHead < q.length) {
      const c = q[this.#qHead]!;
      const k = Math.min(c.length, p.length - n);
      p.set(k === c.length ? c : c.subarray(0, k), n);
      n += k;
      if (k === c.length) this.#qHead++;
      else q[this.#qHead] = c.subarray(k);
    }
    if (this.#qHead === q.length) {
      this.#queue = [];
      this.#qHead = 0;
    }
    this.#queued -= n;
    this.#consumed(n);
    return n;
  }

  /** Queues a copy of `buf[from, to)`, into the last copy's spare room when it fits. */
  #enqueue(buf: Uint8Array, from: number, to: number): void {
    const len = to - from;
    this.#queued += len;
    const q = this.#queue;
    const last = q.length > this.#qHead ? q[q.length - 1]! : null;
    if (last !== null) {
      const backing = new Uint8Array(last.buffer);
      // Only while the last view still ends where its backing's used part ends.
      if (
        last.byteOffset + last.length === this.#tailUsed &&
        backing.length - this.#tailUsed >= len
      ) {
        backing.set(buf.subarray(from, to), this.#tailUsed);
        this.#tailUsed += len;
        q[q.length - 1] = backing.subarray(last.byteOffset, this.#tailUsed);
        return;
      }
    }
    const backing = new Uint8Array(Math.max(len, RECV_CHUNK_BYTES));
    backing.set(buf.subarray(from, to));
    this.#tailUsed = len;
    q.push(backing.subarray(0, len));
  }

  #consumed(n: number): void {
    this.#unacked += n;
    // Credit goes back in quarter-window steps: rare enough to cost nothing, early enough that
    // a bulk sender never waits on a full window while the reader keeps up.
    if (this.#unacked >= STREAM_WINDOW_BYTES / 4 && !this.#finRecv && !this.#resetRecv) {
      this.#recvAllowed += this.#unacked;
      this.#s._queueWindow(this.id, this.#unacked);
      this.#unacked = 0;
    }
  }

  /**
   * Queues all of `p` now (copied) and returns true when that needs no waiting: the stream is
   * open for writing, has the credit, and the session is not congested. Otherwise queues nothing
   * and returns false (then `write` waits or reports the error).
   */
  tryWrite(p: Uint8Array): boolean {
    const n = p.length;
    if (
      this.#writeBlocked() || n > this.#credit || n > MAX_DATA_FRAME_BYTES || this.#s._congested
    ) {
      return false;
    }
    if (n > 0) this.#s._queue(FrameType.Data, this.id, p, 0, n);
    this.#credit -= n;
    return true;
  }

  /** Writes `p` (copied into the session's queue); resolves with `p.length`. */
  write(p: Uint8Array): Promise<number> {
    if (this.#writeBlocked()) return Promise.reject(this.#writeError());
    if (this.tryWrite(p)) return Promise.resolve(p.length);
    return this.#writeSlow(p);
  }

  async #writeSlow(p: Uint8Array): Promise<number> {
    let off = 0;
    while (off < p.length) {
      if (this.#writeBlocked()) throw this.#writeError();
      if (this.#credit === 0) {
        await new Promise<void>((r) => this.#creditWaiters.push(r));
        continue;
      }
      if (this.#s._congested) {
        // Woken by the drain, or by this stream's end: closing it (a timeout, say) must not
        // leave the write waiting on a session whose peer stopped reading.
        await new Promise<void>((r) => {
          this.#creditWaiters.push(r);
          void this.#s._drained().then(r);
        });
        continue;
      }
      const k = Math.min(this.#credit, MAX_DATA_FRAME_BYTES, p.length - off);
      this.#s._queue(FrameType.Data, this.id, p, off, k);
      this.#credit -= k;
      off += k;
    }
    return p.length;
  }

  #writeBlocked(): boolean {
    return this.#closed || this.#finSent || this.#resetRecv || this.#error !== null;
  }

  #resetError(): Error {
    return this.#refused
      ? new Deno.errors.ConnectionRefused("stream refused by the callee")
      : new Deno.errors.ConnectionReset("stream reset by peer");
  }

  #writeError(): Error {
    if (this.#error !== null) return new Deno.errors.BrokenPipe(this.#error.message);
    if (this.#refused) return new Deno.errors.ConnectionRefused("stream refused by the callee");
    if (this.#resetRecv) return new Deno.errors.BrokenPipe("stream reset by peer");
    return new Deno.errors.BrokenPipe("stream closed for writing");
  }

  /** Half-closes: the peer reads EOF after what was written; reading goes on. */
  closeWrite(): Promise<void> {
    if (!this.#writeBlocked()) {
      this.#finSent = true;
      this.#s._queue(FrameType.Fin, this.id, null, 0, 0);
    }
    return Promise.resolve();
  }

  /**
   * Closes the stream. Like a socket: graceful (the peer reads EOF) when both directions had
   * ended, otherwise a reset. A pending read fails with `BadResource`.
   */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("stream already closed");
    this.#closed = true;
    if (this.#error === null && !this.#resetRecv && !(this.#finSent && this.#finRecv)) {
      this.#s._queue(FrameType.Reset, this.id, null, 0, 0);
    }
    this.#release();
  }

  /** Leaves the session and fails whoever waits on this stream (closed or refused). */
  #release(): void {
    this.#s._forget(this);
    this.#queue = [];
    this.#qHead = 0;
    this.#queued = 0;
    const r = this.#reader;
    this.#reader = null;
    r?.reject(new Deno.errors.BadResource("stream closed"));
    this.#wakeWriters();
  }

  #wakeWriters(): void {
    for (const w of this.#creditWaiters.splice(0)) w();
  }

  /** @internal Bytes arrived; `buf` is reused by the session, so they are copied. */
  _onData(buf: Uint8Array, off: number, len: number): void {
    if (this.#finRecv || this.#resetRecv) throw new MuxProtocolError("data after end of stream");
    this.#recvAllowed -= len;
    if (this.#recvAllowed < 0) throw new MuxProtocolError(`stream ${this.id} overran its window`);
    // Nothing to hand over (our side never sends these); a read must not return 0 bytes.
    if (len === 0) return;
    const r = this.#reader;
    if (r !== null && this.#queued === 0) {
      this.#reader = null;
      const k = Math.min(len, r.p.length);
      r.p.set(buf.subarray(off, off + k));
      if (k < len) this.#enqueue(buf, off + k, off + len);
      this.#consumed(k);
      r.resolve(k);
      return;
    }
    this.#enqueue(buf, off, off + len);
  }

  /** @internal The peer half-closed. */
  _onFin(): void {
    this.#finRecv = true;
    this.#settleReader();
  }

  /**
   * Turns the stream down before reading any of it (server side): the caller's reads and
   * writes fail with `ConnectionRefused`, which the forwarder treats like a refused connect, so
   * the call goes to another endpoint whatever its method.
   */
  refuse(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#error === null) this.#s._queue(FrameType.Refused, this.id, null, 0, 0);
    this.#release();
  }

  /** @internal The server turned the stream down unread. */
  _onRefused(): void {
    this.#refused = true;
    this._onReset();
  }

  /** @internal The peer reset the stream. */
  _onReset(): void {
    this.#resetRecv = true;
    this.#settleReader();
    this.#wakeWriters();
  }

  /** @internal The peer returned `n` bytes of credit. */
  _onWindow(n: number): void {
    this.#credit += n;
    if (this.#credit > STREAM_WINDOW_BYTES) {
      throw new MuxProtocolError(`stream ${this.id} was given more credit than its window`);
    }
    this.#wakeWriters();
  }

  /** @internal The session ended. */
  _onSessionError(err: Error): void {
    this.#error = err;
    this.#settleReader();
    this.#wakeWriters();
  }

  /** Answers a pending read once the stream has ended one way or another. */
  #settleReader(): void {
    const r = this.#reader;
    if (r === null || this.#queued > 0) return;
    this.#reader = null;
    if (this.#finRecv) r.resolve(null);
    else if (this.#resetRecv) r.reject(this.#resetError());
    else r.reject(new Deno.errors.ConnectionReset(this.#error?.message ?? "session ended"));
  }

  /** No-op: Nagle's algorithm belongs to the session's connection. */
  setNoDelay(_noDelay?: boolean): void {}

  /** No-op: keep-alive belongs to the session's connection. */
  setKeepAlive(_keepAlive?: boolean): void {}

  /** No-op. */
  ref(): void {}

  /** No-op. */
  unref(): void {}

  /** A stream view, for code that wants one (not used on the hot path). */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return readableOf(this);
  }

  /** A stream view, for code that wants one (not used on the hot path). */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return writableOf(this);
  }

  /** Closes quietly. */
  [Symbol.dispose](): void {
    try {
      this.close();
    } catch {
      // Closed already.
    }
  }
}
