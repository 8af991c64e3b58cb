/**
 * One HTTP/2 connection over a byte duplex, in either role (RFC 9113): the frame reader, the
 * stream state machine, connection and stream flow control, SETTINGS/PING/GOAWAY/RST_STREAM,
 * header blocks with CONTINUATION, and a writer that batches every frame queued in one turn
 * into one write. Hostile peers are the normal case: header lists, concurrent streams, the
 * HPACK table and CONTINUATION runs are bounded, floods of SETTINGS, PING, empty frames and
 * stream resets (CVE-2023-44487) end the connection with ENHANCE_YOUR_CALM, and protocol
 * errors end it with GOAWAY and the matching code.
 * @module
 */
import { BlockReader } from "./blocks.ts";
import { Emitter } from "./emitter.ts";
import { recordOf } from "./fields.ts";
import { writeHeaderBlock } from "./header_block.ts";
import {
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  FrameType,
  H2ConnectionError,
  MAX_WINDOW,
  PREFACE,
  read31,
  read32,
  Setting,
} from "./frames.ts";
import { Bytes, HpackDecoder, HpackEncoder, HpackError } from "./hpack.ts";
import { FrameWriter, type Wire } from "./writer.ts";
import { FloodGuard } from "./flood.ts";
import type { H2ConnectionOptions } from "./options.ts";
import { readSettings } from "./settings.ts";
import { H2Stream, type SendOptions, type StreamHost, type WireHeaders } from "./stream.ts";

/** The receive window each stream starts with (advertised in SETTINGS). */
export const STREAM_WINDOW = 128 * 1024;
/** The connection's receive window (opened by WINDOW_UPDATE at the start). */
export const CONNECTION_WINDOW = 8 * 1024 * 1024;
/** The dynamic table the peer's encoder may use (the default: not advertised). */
const _HPACK_TABLE = 4096;
/**
 * Bytes waiting to be written above which streams stop framing their bodies until the writes
 * catch up (a peer that opens large windows and then does not read).
 */
const _OUT_HIGH_WATER = 1024 * 1024;

/** A stream waiting for the peer's concurrency limit (client role). */
interface _Queued {
  s: H2Stream;
  h: WireHeaders;
  endStream: boolean;
}

/**
 * One HTTP/2 connection. Events: `close`, `goaway` (code, lastStreamId), `failed` (code,
 * reason: this side ended it with GOAWAY for a protocol error or a flood).
 */
export class H2Connection extends Emitter implements StreamHost {
  readonly #o: H2ConnectionOptions;
  readonly #server: boolean;
  readonly #now: () => number;
  readonly #streams = new Map<number, H2Stream>();
  readonly #queued: _Queued[] = [];
  readonly #blocked = new Set<H2Stream>();
  readonly #decoder: HpackDecoder;
  readonly #blocks: BlockReader;
  readonly #control: FloodGuard;
  readonly #resets: FloodGuard;
  #lastPeerId = 0;
  #nextId = 1;
  #peerMaxFrame = DEFAULT_MAX_FRAME;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxStreams = Infinity;
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow = CONNECTION_WINDOW;
  #connUnacked = 0;
  #prefaceLeft: number;
  #sawSettings = false;
  #in: Uint8Array | null = null;
  // Output.
  readonly #w = new FrameWriter({
    written: () => this.#unblock(),
    drained: () => {
      if (!this.#closed && this.#streams.size === 0) this.destroy(ErrorCode.CANCEL);
    },
    broken: () => this.destroy(ErrorCode.CANCEL),
  });
  readonly #scratch = new Bytes(1024);
  readonly #encoder = new HpackEncoder();
  #goawaySent = false;
  #goawayRecv = false;
  #closed = false;
  /** When the last stream ended (or the connection began), for idle sweeps. */
  lastActive: number;

  /** Creates the connection; {@linkcode start} attaches its bytes. */
  constructor(o: H2ConnectionOptions) {
    super();
    this.#o = o;
    this.#server = o.role === "server";
    this.#now = o.now ?? (() => performance.now());
    this.#prefaceLeft = this.#server ? PREFACE.length : 0;
    this.#nextId = 1;
    this.#decoder = new HpackDecoder(_HPACK_TABLE, o.maxHeaderListBytes);
    // A block may take one frame more than the list limit (literals can be longer encoded).
    this.#blocks = new BlockReader(o.maxHeaderListBytes + DEFAULT_MAX_FRAME);
    this.#control = FloodGuard.control(this.#now);
    this.#resets = FloodGuard.resets(this.#now);
    this.lastActive = this.#now();
  }

  /** Streams open (and, client role, waiting to open). */
  get activeStreams(): number {
    return this.#streams.size + this.#queued.length;
  }

  /** The connection is over. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether new requests may start (client role): not closed, no GOAWAY either way. */
  get usable(): boolean {
    return !this.#closed && !this.#goawaySent && !this.#goawayRecv;
  }

  /** Starts speaking over `wire`: this side's preface and SETTINGS go out at once. */
  start(wire: Wire): void {
    this.#w.attach(wire);
    if (!this.#server) this.#w.out.bytes(PREFACE);
    const settings: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, this.#o.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [Setting.MAX_HEADER_LIST_SIZE, this.#o.maxHeaderListBytes],
    ];
    if (!this.#server) settings.unshift([Setting.ENABLE_PUSH, 0]);
    this.#w.frame(settings.length * 6, FrameType.SETTINGS, 0, 0);
    for (const [id, v] of settings) {
      this.#w.u16(id);
      this.#w.u32(v);
    }
    this.#w.windowUpdate(0, CONNECTION_WINDOW - DEFAULT_WINDOW);
  }

  /** Bytes from the peer. */
  feed(chunk: Uint8Array): void {
    if (this.#closed) return;
    try {
      this.#feed(chunk);
    } catch (e) {
      if (e instanceof H2ConnectionError) this.#fail(e.code, e.message);
      else this.#fail(ErrorCode.INTERNAL_ERROR, String(e));
    }
  }

  /** The peer closed the connection (or it broke): nothing more can be written. */
  ended(): void {
    this.#w.detach();
    this.destroy(ErrorCode.CANCEL);
  }

  /** Opens a request stream (client role); throws when the connection takes no new ones. */
  request(h: WireHeaders, o: SendOptions = {}): H2Stream {
    if (!this.usable) throw new Error("h2 connection is closing");
    const id = this.#nextId;
    if (id > 0x7fff_ffff) throw new Error("h2 stream ids used up");
    this.#nextId += 2;
    const s = new H2Stream(this, id, this.#peerInitialWindow, STREAM_WINDOW);
    s.headersSent = true;
    s.wantsTrailers = o.waitForTrailers === true;
    const end = o.endStream === true;
    if (end) {
      s.writableEnded = true;
      s.localEnded = true;
    }
    if (this.#streams.size >= this.#peerMaxStreams) {
      this.#queued.push({ s, h, endStream: end });
    } else {
      this.#streams.set(id, s);
      this.sendHeaders(s, h, end);
    }
    return s;
  }

  /** Graceful close: GOAWAY, open streams finish, then the connection closes. */
  close(): void {
    if (this.#closed) return;
    if (!this.#goawaySent) this.#goaway(ErrorCode.NO_ERROR, "");
    for (const q of this.#queued.splice(0)) q.s.finish(ErrorCode.REFUSED_STREAM);
    if (this.#streams.size === 0) this.#w.closeSoon();
  }

  /**
   * Ends the connection now; open streams end with `code`. The peer is told with GOAWAY (unless
   * it was already), written with whatever was queued before the connection closes.
   */
  destroy(code: number = ErrorCode.CANCEL): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of this.#queued.splice(0)) q.s.finish(ErrorCode.REFUSED_STREAM);
    for (const s of [...this.#streams.values()]) s.finish(code);
    this.#streams.clear();
    this.#blocked.clear();
    if (this.#w.attached && !this.#goawaySent) this.#goaway(ErrorCode.NO_ERROR, "");
    this.#w.finish();
    queueMicrotask(() => this.emit("close"));
  }

  // ---- StreamHost: what streams ask of their connection. ----

  /** Sends a header block for `s`. */
  sendHeaders(s: H2Stream, h: WireHeaders, endStream: boolean): void {
    if (this.#closed) return;
    writeHeaderBlock(this.#w, this.#scratch, this.#encoder, h, s.id, endStream, this.#peerMaxFrame);
    if (endStream) this.#localDone(s);
  }

  /** See {@linkcode StreamHost.sendNow}: one DATA frame of what the windows allow of `b`. */
  sendNow(s: H2Stream, b: Uint8Array): number {
    if (this.#closed || s.closed || !this.#streams.has(s.id)) return 0;
    const win = Math.min(s.sendWindow, this.#sendWindow);
    if (win <= 0 || this.#w.out.length >= _OUT_HIGH_WATER) return 0;
    const n = Math.min(b.length, win, this.#peerMaxFrame);
    this.#w.frame(n, FrameType.DATA, 0, s.id);
    this.#w.out.bytes(n === b.length ? b : b.subarray(0, n));
    s.sendWindow -= n;
    this.#sendWindow -= n;
    return n;
  }

  /** Frames what the windows allow of `s`'s queued body; ends it when asked. */
  pump(s: H2Stream): void {
    if (this.#closed || s.closed || !this.#streams.has(s.id)) return;
    while (s.pending.length > 0) {
      const win = Math.min(s.sendWindow, this.#sendWindow);
      if (win <= 0 || this.#w.out.length >= _OUT_HIGH_WATER) {
        this.#blocked.add(s);
        break;
      }
      const c = s.pending[0]!;
      const n = Math.min(c.length, win, this.#peerMaxFrame);
      const last = n === c.length && s.pending.length === 1;
      const endNow = last && s.writableEnded && !s.wantsTrailers;
      this.#w.frame(n, FrameType.DATA, endNow ? Flag.END_STREAM : 0, s.id);
      this.#w.out.bytes(n === c.length ? c : c.subarray(0, n));
      if (n === c.length) s.pending.shift();
      else s.pending[0] = c.subarray(n);
      s.pendingBytes -= n;
      s.sendWindow -= n;
      this.#sendWindow -= n;
      if (endNow) s.localEnded = true;
    }
    if (s.pending.length === 0 && s.writableEnded && !s.localEnded) {
      if (s.wantsTrailers) {
        if (!s.trailersAsked) {
          s.trailersAsked = true;
          s.askTrailers();
          return;
        }
      } else {
        this.#w.frame(0, FrameType.DATA, Flag.END_STREAM, s.id);
        s.localEnded = true;
      }
    }
    s.drained();
    if (s.localEnded) this.#localDone(s);
  }

  /** Sends RST_STREAM for `s` (a queued stream is just dropped). */
  sendReset(s: H2Stream, code: number): void {
    if (!this.#streams.has(s.id)) {
      const i = this.#queued.findIndex((q) => q.s === s);
      if (i >= 0) this.#queued.splice(i, 1);
      return;
    }
    if (this.#closed) return;
    this.#w.frame(4, FrameType.RST_STREAM, 0, s.id);
    this.#w.u32(code);
  }

  /** Forgets a finished stream; starts a queued one; closes a draining connection. */
  forget(s: H2Stream): void {
    if (!this.#streams.delete(s.id)) return;
    // Rapid reset is streams opened and reset over and over: completed ones offset resets, so
    // busy legitimate traffic with some cancellations (deadlines, clients leaving) never trips.
    if (this.#server && s.rstCode === ErrorCode.NO_ERROR) this.#resets.relieve();
    this.#blocked.delete(s);
    this.lastActive = this.#now();
    while (this.#queued.length > 0 && this.#streams.size < this.#peerMaxStreams) {
      const q = this.#queued.shift()!;
      this.#streams.set(q.s.id, q.s);
      this.sendHeaders(q.s, q.h, q.endStream);
      this.pump(q.s);
    }
    const away = this.#goawaySent || (this.#goawayRecv && !this.#server);
    if (away && this.#streams.size === 0) this.#w.closeSoon();
  }

  /** The reader took `n` bytes of `s`'s body: reopen its window in bulk. */
  consumed(s: H2Stream, n: number): void {
    s.unacked += n;
    if (s.unacked >= STREAM_WINDOW / 2 && !s.remoteEnded && !this.#closed) {
      this.#w.windowUpdate(s.id, s.unacked);
      s.recvWindow += s.unacked;
      s.unacked = 0;
    }
  }

  // ---- Reading. ----

  #feed(chunk: Uint8Array): void {
    let b = chunk;
    if (this.#in !== null) {
      b = new Uint8Array(this.#in.length + chunk.length);
      b.set(this.#in);
      b.set(chunk, this.#in.length);
      this.#in = null;
    }
    let p = 0;
    if (this.#prefaceLeft > 0) {
      const at = PREFACE.length - this.#prefaceLeft;
      const n = Math.min(this.#prefaceLeft, b.length);
      for (let i = 0; i < n; i++) {
        if (b[i] !== PREFACE[at + i]) {
          throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad connection preface");
        }
      }
      this.#prefaceLeft -= n;
      p = n;
    }
    while (b.length - p >= FRAME_HEADER_BYTES) {
      const len = (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
      if (len > DEFAULT_MAX_FRAME) {
        throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "frame larger than allowed");
      }
      if (b.length - p - FRAME_HEADER_BYTES < len) break;
      const start = p + FRAME_HEADER_BYTES;
      this.#onFrame(b[p + 3]!, b[p + 4]!, read31(b, p + 5), b, start, start + len);
      p = start + len;
      if (this.#closed) return;
    }
    if (p < b.length) this.#in = b.slice(p);
  }

  #onFrame(type: number, flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (this.#blocks.pending !== 0 && type !== FrameType.CONTINUATION) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "header block interrupted");
    }
    if (!this.#sawSettings) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "first frame is not SETTINGS");
      }
      this.#sawSettings = true;
    }
    switch (type) {
      case FrameType.DATA:
        return this.#onData(flags, id, b, s, e);
      case FrameType.HEADERS: {
        const block = this.#blocks.headers(flags, id, b, s, e);
        if (block !== null) this.#onBlock(block.id, block.endStream, block.fragment);
        return;
      }
      case FrameType.CONTINUATION: {
        const block = this.#blocks.continuation(flags, id, b, s, e);
        if (block !== null) this.#onBlock(block.id, block.endStream, block.fragment);
        return;
      }
      case FrameType.PRIORITY:
        if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on 0");
        if (e - s !== 5) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY size");
        return this.#calm(this.#control, "PRIORITY flood");
      case FrameType.RST_STREAM:
        return this.#onReset(id, b, s, e);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, id, b, s, e);
      case FrameType.PUSH_PROMISE:
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE not enabled");
      case FrameType.PING:
        if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
        if (e - s !== 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING size");
        if ((flags & Flag.ACK) !== 0) return;
        this.#calm(this.#control, "PING flood");
        this.#w.frame(8, FrameType.PING, Flag.ACK, 0);
        this.#w.out.bytes(b.subarray(s, e));
        return;
      case FrameType.GOAWAY:
        return this.#onGoaway(id, b, s, e);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, b, s, e);
      default:
        // Unknown frame types are ignored (RFC 9113 section 5.5).
        return;
    }
  }

  /** Whether `id` names a stream that was never opened (by either side). */
  #idle(id: number): boolean {
    const peerOpens = this.#server ? (id & 1) === 1 : (id & 1) === 0;
    return peerOpens ? id > this.#lastPeerId : id >= this.#nextId;
  }

  #onData(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const len = e - s;
    this.#recvWindow -= len;
    if (this.#recvWindow < 0) {
      throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded");
    }
    // The connection's window reopens on receipt: the streams' windows bound what is held.
    this.#connUnacked += len;
    if (this.#connUnacked >= CONNECTION_WINDOW / 2) {
      this.#w.windowUpdate(0, this.#connUnacked);
      this.#recvWindow += this.#connUnacked;
      this.#connUnacked = 0;
    }
    let from = s;
    let to = e;
    if ((flags & Flag.PADDED) !== 0) {
      if (len < 1 || b[s]! >= len) {
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad DATA padding");
      }
      from = s + 1;
      to = e - b[s]!;
    }
    const st = this.#streams.get(id);
    if (st === undefined) {
      if (this.#idle(id)) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on idle");
      return; // A stream this side closed: the peer had not seen it yet.
    }
    if (st.remoteEnded) return this.#streamError(st, ErrorCode.STREAM_CLOSED);
    if (!st.headersReceived) return this.#streamError(st, ErrorCode.PROTOCOL_ERROR);
    st.recvWindow -= len;
    if (st.recvWindow < 0) return this.#streamError(st, ErrorCode.FLOW_CONTROL_ERROR);
    // Padding counts against the window but is never read: reopen it at once.
    if (to - from < len) this.consumed(st, len - (to - from));
    const end = (flags & Flag.END_STREAM) !== 0;
    if (st.discarding) {
      this.consumed(st, to - from);
      if (end) st.pushEnd();
      return;
    }
    if (to > from) st.pushData(b.slice(from, to));
    else if (!end) this.#calm(this.#control, "empty DATA flood");
    if (end) st.pushEnd();
  }

  #onBlock(id: number, endStream: boolean, frag: Uint8Array): void {
    let decoded;
    try {
      decoded = this.#decoder.decode(frag);
    } catch (e) {
      if (e instanceof HpackError) {
        throw new H2ConnectionError(ErrorCode.COMPRESSION_ERROR, e.message);
      }
      throw e;
    }
    const st = this.#streams.get(id);
    if (st === undefined) {
      if (this.#server && (id & 1) === 1 && id > this.#lastPeerId) {
        return this.#newStream(id, endStream, decoded.fields, decoded.tooLarge);
      }
      if (this.#idle(id)) {
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on an idle stream");
      }
      return; // A stream this side closed: its block kept the table in step, nothing more.
    }
    if (st.remoteEnded) return this.#streamError(st, ErrorCode.STREAM_CLOSED);
    if (decoded.tooLarge) return this.#streamError(st, ErrorCode.PROTOCOL_ERROR);
    if (!this.#server && !st.headersReceived) {
      const h = recordOf(decoded.fields, "response");
      if (typeof h === "string" || h[":status"] === undefined) {
        return this.#streamError(st, ErrorCode.PROTOCOL_ERROR);
      }
      const status = Number(h[":status"]);
      if (status >= 100 && status < 200) {
        // An informational head: the real one follows.
        if (endStream) return this.#streamError(st, ErrorCode.PROTOCOL_ERROR);
        return;
      }
      st.headersReceived = true;
      st.emit("response", h, endStream ? Flag.END_STREAM : 0);
      if (endStream) st.pushEnd();
      return;
    }
    // Trailers: they end the stream.
    if (!endStream) return this.#streamError(st, ErrorCode.PROTOCOL_ERROR);
    const t = recordOf(decoded.fields, "trailers");
    if (typeof t === "string") return this.#streamError(st, ErrorCode.PROTOCOL_ERROR);
    st.emit("trailers", t);
    st.pushEnd();
  }

  #newStream(id: number, endStream: boolean, fields: [string, string][], tooLarge: boolean) {
    this.#lastPeerId = id;
    if (this.#goawaySent || this.#streams.size >= this.#o.maxConcurrentStreams) {
      this.#calm(this.#resets, "too many refused streams");
      this.#w.frame(4, FrameType.RST_STREAM, 0, id);
      this.#w.u32(ErrorCode.REFUSED_STREAM);
      return;
    }
    const st = new H2Stream(this, id, this.#peerInitialWindow, STREAM_WINDOW);
    st.headersReceived = true;
    this.#streams.set(id, st);
    if (tooLarge) {
      st.remoteEnded = endStream;
      st.respond({ ":status": 431 }, { endStream: true });
      return;
    }
    const h = recordOf(fields, "request");
    if (typeof h === "string") return this.#streamError(st, ErrorCode.PROTOCOL_ERROR);
    this.#o.onStream?.(st, h, endStream);
    if (endStream) st.pushEnd();
  }

  #onReset(id: number, b: Uint8Array, s: number, e: number): void {
    if (id === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on 0");
    if (e - s !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM size");
    const st = this.#streams.get(id);
    if (st === undefined) {
      if (this.#idle(id)) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "reset of idle");
      return;
    }
    // Rapid reset (CVE-2023-44487): streams opened and cancelled at once cost work each.
    if (this.#server) this.#calm(this.#resets, "too many stream resets");
    st.finish(read32(b, s));
  }

  #onSettings(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    const settings = readSettings(flags, id, b, s, e);
    if (settings === null) return;
    this.#calm(this.#control, "SETTINGS flood");
    for (const [key, v] of settings) {
      if (key === Setting.MAX_CONCURRENT_STREAMS) this.#peerMaxStreams = v;
      else if (key === Setting.MAX_FRAME_SIZE) this.#peerMaxFrame = v;
      else if (key === Setting.HEADER_TABLE_SIZE) this.#encoder.setTableLimit(v);
      else if (key === Setting.INITIAL_WINDOW_SIZE) {
        const delta = v - this.#peerInitialWindow;
        this.#peerInitialWindow = v;
        for (const st of this.#streams.values()) {
          st.sendWindow += delta;
          if (st.sendWindow > MAX_WINDOW) {
            throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow");
          }
        }
      }
    }
    this.#w.frame(0, FrameType.SETTINGS, Flag.ACK, 0);
    for (const st of [...this.#streams.values()]) this.pump(st);
  }

  #onGoaway(id: number, b: Uint8Array, s: number, e: number): void {
    if (id !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (e - s < 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY size");
    const last = read31(b, s);
    const code = read32(b, s + 4);
    this.#goawayRecv = true;
    // Streams this side opened past `last` were never processed: they may be sent again.
    for (const st of [...this.#streams.values()]) {
      const mine = this.#server ? (st.id & 1) === 0 : (st.id & 1) === 1;
      if (mine && st.id > last) st.finish(ErrorCode.REFUSED_STREAM);
    }
    for (const q of this.#queued.splice(0)) q.s.finish(ErrorCode.REFUSED_STREAM);
    this.emit("goaway", code, last);
    // A client closes a connection the server sent away; a server leaves the closing to the
    // client that said GOAWAY (it may still be reading), or to the idle sweep.
    if (!this.#server && this.#streams.size === 0) this.#w.closeSoon();
  }

  #onWindowUpdate(id: number, b: Uint8Array, s: number, e: number): void {
    if (e - s !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE size");
    const inc = read31(b, s);
    if (id === 0) {
      if (inc === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) {
        throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow");
      }
      this.#unblock();
      return;
    }
    const st = this.#streams.get(id);
    if (st === undefined) {
      if (this.#idle(id)) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "update of idle");
      return;
    }
    if (inc === 0) return this.#streamError(st, ErrorCode.PROTOCOL_ERROR);
    st.sendWindow += inc;
    if (st.sendWindow > MAX_WINDOW) return this.#streamError(st, ErrorCode.FLOW_CONTROL_ERROR);
    this.pump(st);
  }

  /** Frames the bodies that waited for the connection's window or for the writes. */
  #unblock(): void {
    if (this.#blocked.size === 0 || this.#closed) return;
    const blocked = [...this.#blocked];
    this.#blocked.clear();
    for (const st of blocked) this.pump(st);
  }

  /** A stream error: RST_STREAM with `code`, the stream over. */
  #streamError(st: H2Stream, code: number): void {
    this.sendReset(st, code);
    st.finish(code);
  }

  /** Counts one frame against `g`; past its limit the peer is told to calm down. */
  #calm(g: FloodGuard, what: string): void {
    if (g.hit()) throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, what);
  }

  // ---- Writing. ----

  /**
   * A stream's END_STREAM went out. A server that answered before the request's body ended
   * reads the rest and drops it (reopening the window), so the client can finish and the
   * stream closes cleanly; a client that never finishes is bounded by the stream limit.
   */
  #localDone(s: H2Stream): void {
    if (this.#server && !s.remoteEnded && !s.closed) {
      s.discard();
      return;
    }
    s.maybeClose();
  }

  #goaway(code: number, debug: string): void {
    this.#goawaySent = true;
    this.#w.goaway(this.#lastPeerId, code, debug);
  }

  /** A connection error: GOAWAY with `code`, then close once it is written. */
  #fail(code: number, why: string): void {
    if (this.#closed) return;
    this.emit("failed", code, why);
    this.#blocks.reset();
    this.#goaway(code, why);
    this.destroy(code === ErrorCode.NO_ERROR ? ErrorCode.CANCEL : code);
  }
}
