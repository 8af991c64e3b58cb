/**
 * One client connection's state: its read buffer and the offsets into it, the deadlines the
 * forwarder's sweep checks, and the exchange its requests reuse. The layers of the request
 * path (`request_path.ts`, `layer_*.ts`) read and move these fields; this module holds only the
 * synchronous bookkeeping around them.
 * @module
 */
import { ByteWriter, callerLine, type HeadScan, newHeadScan, resetHeadScan } from "../http1/mod.ts";
import { readerFor, type ReadFn } from "./direct_read.ts";
import { closeQuietly } from "../conn/io.ts";
import { peerIdentityOf } from "./tls_conn.ts";
import { type ForwarderCtx, SWEEP_INTERVAL_MS } from "./context.ts";
import { Exchange } from "./exchange.ts";
import type { ClientInfo } from "./types.ts";

/** One client connection: its buffer, deadlines and the exchange of the request in progress. */
export class Session {
  /** The forwarder's shared state. */
  readonly f: ForwarderCtx;
  /** The client connection. */
  readonly conn: Deno.Conn;
  /** Reads from the client (0 or null at end of stream). */
  readonly read: ReadFn;
  /** The address appended to `x-forwarded-for`, or null when not appending. */
  readonly clientAddr: string | null;
  /** The client as the router sees it. */
  readonly client: ClientInfo;
  /**
   * `x-skein-caller: <id>\r\n` on the inbound (null: no verified caller), the listener's
   * `clientLines` on an ingress listener, else undefined.
   */
  readonly callerLine: string | null | undefined;
  /** The request in progress. */
  readonly x: Exchange;
  /** Client bytes read; `[pos, len)` is not consumed yet. */
  buf: Uint8Array;
  /** Where the unconsumed client bytes start. */
  pos = 0;
  /** Where the client bytes read so far end. */
  len = 0;
  /** The head scanner's state, reused per request. */
  readonly scan: HeadScan = newHeadScan(0);
  /** Builds request and response heads, reused per try. */
  readonly out = new ByteWriter(4096, 1 << 20);
  /** Waiting for a request head (idle or header-read deadline armed). */
  waitingHead = false;
  /**
   * Buffering a request body before the first attempt: the request already holds its circuit
   * breaker slot, and no try timer runs yet, so the header-read timeout bounds this wait too.
   */
  waitingBody = false;
  /** The sweep tick at which a head or body wait is given up. */
  deadlineTick = Infinity;
  /** The connection is closed (or handed over); the keep-alive loop ends. */
  closed = false;
  /** Ends the fault delay in progress early (the session was aborted). */
  endDelay: (() => void) | null = null;

  /** Wraps an accepted client connection. */
  constructor(f: ForwarderCtx, conn: Deno.Conn) {
    this.f = f;
    this.conn = conn;
    this.read = readerFor(conn);
    this.buf = new Uint8Array(f.opts.clientBufferBytes);
    this.x = new Exchange(f.upstreams);
    const ra = conn.remoteAddr as Deno.NetAddr;
    this.clientAddr = f.opts.forwardedFor && ra.hostname !== undefined ? ra.hostname : null;
    this.client = {
      address: ra.hostname ?? null,
      port: ra.port ?? 0,
      identity: peerIdentityOf(conn),
    };
    this.callerLine = f.opts.callerHeader
      ? callerLine(this.client.identity)
      : f.opts.clientLines ?? undefined;
  }

  /** Closes the connection when a head or body wait ran past its deadline. */
  checkDeadline(tick: number): void {
    if ((this.waitingHead || this.waitingBody) && tick >= this.deadlineTick) this.abort();
  }

  /** Closes the connection if it is idle between requests (a drain starting). */
  closeIfIdle(): void {
    if (this.waitingHead && this.len === this.pos) this.abort();
  }

  /** Closes the connection now (idempotent); a fault delay in progress ends early. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.conn);
    this.endDelay?.();
  }

  /** Header-read timeout in sweep ticks. */
  headTicks(): number {
    return Math.ceil(this.f.opts.headerTimeoutMs / SWEEP_INTERVAL_MS) + 1;
  }

  /** Compacts the buffer for the next head and arms the idle or header-read deadline. */
  beginHead(): void {
    if (this.pos === this.len) {
      this.pos = this.len = 0;
    } else if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.len);
      this.len -= this.pos;
      this.pos = 0;
    }
    resetHeadScan(this.scan, 0);
    const idleTicks = Math.ceil(this.f.opts.keepAliveIdleMs / SWEEP_INTERVAL_MS) + 1;
    this.waitingHead = true;
    this.deadlineTick = this.f.tick + (this.len === 0 ? idleTicks : this.headTicks());
  }

  /** Doubles the buffer (up to `max`) for a head that does not fit. */
  grow(max: number): void {
    const size = Math.min(max, this.buf.length * 2);
    if (size <= this.buf.length) return;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /**
   * Moves the bytes from `pos` into a new buffer with room for `n`. The old buffer is left as
   * it is, because the parsed head still points into it (its fields are read from those bytes):
   * compacting in place would overwrite the head of a request whose body did not fit.
   */
  ensureRoom(n: number): void {
    const next = new Uint8Array(Math.max(n, this.buf.length));
    next.set(this.buf.subarray(this.pos, this.len));
    this.len -= this.pos;
    this.pos = 0;
    this.buf = next;
  }
}
