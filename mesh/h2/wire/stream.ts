/**
 * One HTTP/2 stream of an {@linkcode H2Connection}, in either role, with the shape the call
 * code relies on (that of `node:http2`'s streams): a readable side (`data`, `trailers`, `end`,
 * `pause`/`resume`, buffered until someone reads), a writable side (`write` with `drain`,
 * `end`, `wantTrailers`/`sendTrailers`), `respond` for a server stream, `close(code)` for a
 * reset, and `close` once both sides are over. Frames go through the connection, which owns
 * flow control.
 * @module
 */
import { Emitter } from "./emitter.ts";
import { ErrorCode } from "./frames.ts";

/** A header block in either direction (pseudo-headers included). */
export type WireHeaders = Record<string, string | string[] | number | undefined>;

/** Bytes queued on a stream above which `write` asks the writer to wait for `drain`. */
export const STREAM_HIGH_WATER = 64 * 1024;

/** What a stream needs of its connection. */
export interface StreamHost {
  /** Sends a header block (HEADERS + CONTINUATION). */
  sendHeaders(s: H2Stream, h: WireHeaders, endStream: boolean): void;
  /** Sends what the stream's windows allow of its queued body. */
  pump(s: H2Stream): void;
  /**
   * Frames at once what the windows allow of `b`, a body chunk with nothing queued before it;
   * returns the bytes taken (the rest is queued by the stream).
   */
  sendNow(s: H2Stream, b: Uint8Array): number;
  /** Sends RST_STREAM. */
  sendReset(s: H2Stream, code: number): void;
  /** The stream is over: forget it. */
  forget(s: H2Stream): void;
  /** The reader took `n` body bytes: the stream's window may be opened again. */
  consumed(s: H2Stream, n: number): void;
}

/** Options of a request or response. */
export interface SendOptions {
  /** The headers end the stream (no body). */
  endStream?: boolean;
  /** Emit `wantTrailers` once the body ends, and end with `sendTrailers`. */
  waitForTrailers?: boolean;
}

/** One stream. */
export class H2Stream extends Emitter {
  /** The stream id. */
  readonly id: number;
  readonly #host: StreamHost;
  /** Why it closed: 0 cleanly, an HTTP/2 error code otherwise (undefined while open). */
  rstCode: number | undefined = undefined;
  /** The stream is over. */
  closed = false;
  /** Headers (a response's, on a server stream) were sent. */
  headersSent = false;
  /** `end` was called. */
  writableEnded = false;
  /** The body read to its end (`end` emitted). */
  readableEnded = false;

  // Send side, driven by the connection.
  /** Send window. */
  sendWindow: number;
  /** Body queued, not yet framed. */
  pending: Uint8Array[] = [];
  /** Bytes in {@linkcode pending}. */
  pendingBytes = 0;
  /** END_STREAM was sent. */
  localEnded = false;
  /** Trailers are to be asked for once the body is sent. */
  wantsTrailers = false;
  /** `wantTrailers` was emitted. */
  trailersAsked = false;
  #needDrain = false;

  // Receive side.
  /** Bytes the peer may still send before a WINDOW_UPDATE. */
  recvWindow: number;
  /** END_STREAM was received. */
  remoteEnded = false;
  /** The peer's head arrived (a request's on a server stream, a response's on a client one). */
  headersReceived = false;
  /** Body bytes read but not yet given back as window. */
  unacked = 0;
  /** The response is complete: the rest of the request body is read and dropped. */
  discarding = false;
  #chunks: Uint8Array[] = [];
  #flowing = false;
  #paused = false;
  #scheduled = false;
  #closeQueued = false;
  #closeEmitted = false;

  /** Creates stream `id` with the windows both sides start with. */
  constructor(host: StreamHost, id: number, sendWindow: number, recvWindow: number) {
    super();
    this.#host = host;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Alias of {@linkcode closed}, as node streams have both. */
  get destroyed(): boolean {
    return this.closed;
  }

  protected override added(event: string): void {
    if (event === "data" && !this.#flowing) {
      this.#flowing = true;
      this.#schedule();
    } else if (event === "end" && this.#flowing) {
      this.#schedule();
    }
  }

  /** Sends the response head (server streams). */
  respond(h: WireHeaders, o: SendOptions = {}): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.wantsTrailers = o.waitForTrailers === true;
    if (o.endStream === true) {
      this.writableEnded = true;
      this.localEnded = true;
    }
    this.#host.sendHeaders(this, h, o.endStream === true);
  }

  /** Queues body bytes; false asks the writer to wait for `drain`. */
  write(chunk: Uint8Array | string): boolean {
    if (this.closed || this.writableEnded) return false;
    const b = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
    if (b.length > 0) {
      // The usual chunk goes out as one DATA frame straight away, never through the queue.
      const took = this.pending.length === 0 ? this.#host.sendNow(this, b) : 0;
      if (took < b.length) {
        const rest = took === 0 ? b : b.subarray(took);
        this.pending.push(rest);
        this.pendingBytes += rest.length;
        this.#host.pump(this);
      }
    }
    if (this.pendingBytes >= STREAM_HIGH_WATER) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /** Ends the body (after `chunk`, if given). */
  end(chunk?: Uint8Array | string): void {
    if (this.closed || this.writableEnded) return;
    if (chunk !== undefined) this.write(chunk);
    this.writableEnded = true;
    this.#host.pump(this);
  }

  /** Sends trailers and ends the stream (after `wantTrailers`); empty ones end it with DATA. */
  sendTrailers(h: WireHeaders): void {
    if (this.closed || this.localEnded) throw new Error("stream already ended");
    this.wantsTrailers = false;
    let any = false;
    for (const _ in h) {
      any = true;
      break;
    }
    if (any) {
      this.localEnded = true;
      this.#host.sendHeaders(this, h, true);
    } else {
      this.#host.pump(this);
    }
  }

  /** Resets the stream with `code` (CANCEL by default) unless it is already over. */
  close(code: number = ErrorCode.CANCEL): void {
    if (this.closed) {
      // Over, but its unread body held `close` back: nobody will read it now.
      this.#chunks.length = 0;
      this.#queueClose();
      return;
    }
    if (this.localEnded && this.remoteEnded) return this.finish(ErrorCode.NO_ERROR);
    this.#host.sendReset(this, code);
    this.finish(code);
  }

  /** Stops delivering body bytes (and opening the window for more). */
  pause(): this {
    this.#paused = true;
    return this;
  }

  /** Delivers body bytes again. */
  resume(): this {
    if (this.#paused) {
      this.#paused = false;
      this.#schedule();
    }
    return this;
  }

  // ---- Called by the connection. ----

  /** Body bytes arrived. */
  pushData(b: Uint8Array): void {
    if (this.#flowing && !this.#paused && this.#chunks.length === 0 && !this.#scheduled) {
      this.emit("data", b);
      this.#host.consumed(this, b.length);
      return;
    }
    this.#chunks.push(b);
  }

  /** Drops what is buffered and any body still to come (the exchange is answered). */
  discard(): void {
    this.discarding = true;
    let n = 0;
    for (const c of this.#chunks) n += c.length;
    this.#chunks.length = 0;
    if (n > 0) this.#host.consumed(this, n);
  }

  /** END_STREAM arrived (after `trailers`, if any). */
  pushEnd(): void {
    this.remoteEnded = true;
    if (this.#flowing) this.#schedule();
    this.maybeClose();
  }

  /** The connection framed part of the body: a waiting writer may go on. */
  drained(): void {
    if (this.#needDrain && this.pendingBytes < STREAM_HIGH_WATER) {
      this.#needDrain = false;
      this.emit("drain");
    }
  }

  /** The body is all sent and `end` was called: trailers are wanted now. */
  askTrailers(): void {
    if (this.listenerCount("wantTrailers") === 0) {
      this.wantsTrailers = false;
      this.sendTrailers({});
      return;
    }
    this.emit("wantTrailers");
  }

  /** Closes the stream when both sides are over. */
  maybeClose(): void {
    if (!this.closed && this.localEnded && this.remoteEnded) this.finish(ErrorCode.NO_ERROR);
  }

  /** The stream is over with `code`: forgotten by the connection, `close` emitted. */
  finish(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.rstCode = code;
    this.#host.forget(this);
    if (code !== ErrorCode.NO_ERROR) this.#chunks.length = 0;
    this.#queueClose();
  }

  #queueClose(): void {
    if (this.#closeQueued) return;
    // A cleanly closed stream still hands over what it buffered, and `end`, before `close`.
    if (this.rstCode === ErrorCode.NO_ERROR && this.#chunks.length > 0) return;
    this.#closeQueued = true;
    queueMicrotask(() => {
      this.emit("close");
      this.#closeEmitted = true;
      // Dropping the listeners cuts the stream off from its call, so a stale reference to the
      // stream cannot keep the whole call alive. Not while a reader that came after
      // END_STREAM still waits for its `end`: that is delivered after `close`, and dropped
      // after it (a stream nobody reads drops them now; a later reader gets `end` as ever).
      if (!(this.#flowing && this.#endPending())) this.dropListeners();
    });
  }

  /** Whether `end` may still be emitted: the body ended cleanly and was not read to its end. */
  #endPending(): boolean {
    return this.remoteEnded && !this.readableEnded &&
      (this.rstCode === undefined || this.rstCode === ErrorCode.NO_ERROR);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#deliver();
    });
  }

  #deliver(): void {
    if (!this.#flowing) return;
    let n = 0;
    while (!this.#paused && this.#chunks.length > 0) {
      const c = this.#chunks.shift()!;
      n += c.length;
      this.emit("data", c);
    }
    if (n > 0 && !this.closed) this.#host.consumed(this, n);
    if (this.#chunks.length === 0 && this.remoteEnded && !this.readableEnded && !this.#paused) {
      if (this.rstCode === undefined || this.rstCode === ErrorCode.NO_ERROR) {
        this.readableEnded = true;
        this.emit("end");
        // Nothing follows an `end` delivered after `close`.
        if (this.#closeEmitted) this.dropListeners();
      }
    }
    if (this.closed) this.#queueClose();
  }
}
