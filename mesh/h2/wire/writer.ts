/**
 * The writing half of an HTTP/2 connection: frames are appended to one buffer and leave in one
 * write once the microtasks that one read leads to have run (a relayed response's head, body
 * and trailers go together); while a write is under way, what comes meanwhile waits for the
 * next.
 * @module
 */
import { FRAME_HEADER_BYTES, FrameType, putFrameHeader } from "./frames.ts";
import { Bytes } from "./hpack.ts";

/**
 * Microtasks a flush waits: a relayed response's head is framed in the microtask after the
 * read, its body and trailers in the next.
 */
const _FLUSH_HOPS = 2;

/** Where a connection's bytes go; `write` takes ownership of `b`. */
export interface Wire {
  /** Writes `b`; a promise when the writer should wait before the next write. */
  write(b: Uint8Array): Promise<void> | undefined;
  /** Closes the connection. */
  close(): void;
}

/** What the writer tells its connection. */
export interface WriterHooks {
  /** A write completed: bodies held back by the buffer may go on. */
  written(): void;
  /** A close was asked for and everything is written: close if no stream is left. */
  drained(): void;
  /** A write failed: the connection is broken. */
  broken(): void;
}

/** Frames queued for one connection. */
export class FrameWriter {
  /** The bytes queued, not yet handed to the wire. */
  readonly out: Bytes = new Bytes(16 * 1024);
  readonly #h: WriterHooks;
  #wire: Wire | null = null;
  #queued = false;
  #hops = 0;
  #writing = false;
  #closeAfter = false;
  readonly #flushFn = () => {
    if (++this.#hops < _FLUSH_HOPS) return queueMicrotask(this.#flushFn);
    this.#queued = false;
    this.#flush();
  };

  /** Creates a writer reporting to `h`. */
  constructor(h: WriterHooks) {
    this.#h = h;
  }

  /** Starts writing to `wire`. */
  attach(wire: Wire): void {
    this.#wire = wire;
  }

  /** Appends a frame header (its payload follows through {@linkcode out}). */
  frame(len: number, type: number, flags: number, id: number): void {
    const o = this.out;
    o.ensure(FRAME_HEADER_BYTES + len);
    putFrameHeader(o.buf, o.length, len, type, flags, id);
    o.length += FRAME_HEADER_BYTES;
    this.#schedule();
  }

  /**
   * Reserves a frame header at the end of {@linkcode out} and returns where it is: the payload
   * is then appended in place and {@linkcode sealFrame} writes the header once its length is
   * known (no scratch buffer and copy per header block).
   */
  reserveFrame(): number {
    const o = this.out;
    o.ensure(FRAME_HEADER_BYTES);
    const at = o.length;
    o.length += FRAME_HEADER_BYTES;
    return at;
  }

  /** Writes the header reserved at `at` for the payload appended since, and queues the frame. */
  sealFrame(at: number, type: number, flags: number, id: number): void {
    const o = this.out;
    putFrameHeader(o.buf, at, o.length - at - FRAME_HEADER_BYTES, type, flags, id);
    this.#schedule();
  }

  /** Appends a 16-bit number. */
  u16(v: number): void {
    this.out.byte((v >>> 8) & 0xff);
    this.out.byte(v & 0xff);
  }

  /** Appends a 32-bit number. */
  u32(v: number): void {
    const o = this.out;
    o.ensure(4);
    o.buf[o.length++] = (v >>> 24) & 0xff;
    o.buf[o.length++] = (v >>> 16) & 0xff;
    o.buf[o.length++] = (v >>> 8) & 0xff;
    o.buf[o.length++] = v & 0xff;
  }

  /** Appends WINDOW_UPDATE. */
  windowUpdate(id: number, inc: number): void {
    this.frame(4, FrameType.WINDOW_UPDATE, 0, id);
    this.u32(inc);
  }

  /** Appends GOAWAY. */
  goaway(lastStreamId: number, code: number, debug: string): void {
    const d = new TextEncoder().encode(debug.slice(0, 200));
    this.frame(8 + d.length, FrameType.GOAWAY, 0, 0);
    this.u32(lastStreamId);
    this.u32(code);
    this.out.bytes(d);
  }

  /** Asks for {@linkcode WriterHooks.drained} once everything queued is written. */
  closeSoon(): void {
    this.#closeAfter = true;
    this.#schedule();
  }

  /** The peer is gone: nothing more is written. */
  detach(): void {
    this.#wire = null;
  }

  /** Hands what is queued to the wire and closes it (the connection ends now). */
  finish(): void {
    const wire = this.#wire;
    this.#wire = null;
    if (wire === null) return;
    if (this.out.length > 0) {
      const bytes = this.out.buf.slice(0, this.out.length);
      this.out.length = 0;
      try {
        wire.write(bytes)?.catch(() => {});
      } catch {
        // The connection broke meanwhile: it is being closed anyway.
      }
    }
    wire.close();
  }

  /** Whether a wire is attached. */
  get attached(): boolean {
    return this.#wire !== null;
  }

  #schedule(): void {
    if (this.#queued) return;
    this.#queued = true;
    this.#hops = 0;
    queueMicrotask(this.#flushFn);
  }

  #flush(): void {
    const wire = this.#wire;
    if (wire === null || this.#writing) return;
    if (this.out.length > 0) {
      const data = this.out.buf.slice(0, this.out.length);
      this.out.length = 0;
      let p: Promise<void> | undefined;
      try {
        p = wire.write(data);
      } catch {
        return this.#h.broken();
      }
      if (p !== undefined) {
        this.#writing = true;
        p.then(() => {
          this.#writing = false;
          this.#h.written();
          this.#flush();
        }, () => {
          this.#writing = false;
          this.#h.broken();
        });
        return;
      }
    }
    if (this.#closeAfter) this.#h.drained();
  }
}
