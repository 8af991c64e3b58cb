/**
 * Direct reads and writes on the native handle under a `node:tls` socket, for connections
 * that carry many calls (skein-mux/1 sessions).
 *
 * In Deno 2.9 a `TLSSocket`'s `_handle` is a native `TLSWrap` with Node's stream-handle shape:
 * `readStart()`, an `onread` callback that receives decrypted bytes, and `writeBuffer(req,
 * data)` that encrypts and writes. The socket's Readable and Writable machinery above it
 * (buffering, events, callbacks) is what most of the JavaScript cost of a TLS read or write
 * is; a session that parses frames as they arrive and bounds its own memory needs none of it.
 * Measured on the mTLS benchmark pair: about 4% of the calling proxy's CPU.
 *
 * These are Node-internal shapes (`process.binding("stream_wrap")`), so everything is detected
 * first, and {@linkcode rawTlsHandle} returns null when anything is missing; the socket's
 * ordinary API is then used. `SKEIN_TLS_RAW_HANDLE=off` forces that fallback.
 * @module
 */
import process from "node:process";
import type tls from "node:tls";

/** Joins buffers into one. */
function _concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** libuv's end-of-stream code, which `onread` reports when the peer closes. */
const UV_EOF = -4095;

interface _StreamWrapBinding {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
  WriteWrap: new () => { handle?: unknown; oncomplete?: (status: number) => void };
}

interface _Handle {
  readStart(): number;
  writeBuffer(req: object, data: Uint8Array): number;
  onread: unknown;
}

let _binding: _StreamWrapBinding | null | undefined;

function _streamWrap(): _StreamWrapBinding | null {
  if (_binding !== undefined) return _binding;
  _binding = null;
  try {
    if (Deno.env.get("SKEIN_TLS_RAW_HANDLE") === "off") return null;
    const b = (process as unknown as { binding(n: string): Partial<_StreamWrapBinding> })
      .binding("stream_wrap");
    if (
      b.streamBaseState instanceof Int32Array && typeof b.kReadBytesOrError === "number" &&
      typeof b.kArrayBufferOffset === "number" && typeof b.kLastWriteWasAsync === "number" &&
      typeof b.WriteWrap === "function"
    ) {
      _binding = b as _StreamWrapBinding;
    }
  } catch {
    // No binding (another runtime, or permissions): the socket API is used.
  }
  return _binding;
}

/** Reads and writes through a TLS socket's native handle; see the module doc. */
export class RawTlsHandle {
  readonly #socket: tls.TLSSocket;
  readonly #h: _Handle;
  readonly #b: _StreamWrapBinding;
  /** Bytes handed to the handle whose write has not completed. */
  #pending = 0;
  readonly #highWater: number;
  #drainWaiters: (() => void)[] = [];

  private constructor(socket: tls.TLSSocket, h: _Handle, b: _StreamWrapBinding) {
    this.#socket = socket;
    this.#h = h;
    this.#b = b;
    this.#highWater = socket.writableHighWaterMark ?? 16 * 1024;
  }

  /** The raw handle of `socket`, or null when this runtime does not have the shapes needed. */
  static of(socket: tls.TLSSocket): RawTlsHandle | null {
    const b = _streamWrap();
    const h = (socket as unknown as { _handle?: Partial<_Handle> })._handle;
    if (
      b === null || h === undefined || h === null || typeof h.readStart !== "function" ||
      typeof h.writeBuffer !== "function" || !("onread" in h)
    ) {
      return null;
    }
    return new RawTlsHandle(socket, h as _Handle, b);
  }

  /**
   * Takes over reading for good: bytes the socket has already buffered go to `onData` first,
   * then every decrypted chunk as it arrives; `onEnd` runs at the peer's end of stream or a
   * read error (the caller also listens for the socket's own `error` and `close`).
   */
  start(onData: (chunk: Uint8Array) => void, onEnd: (err: Error | null) => void): void {
    const s = this.#socket;
    let c: Uint8Array | null;
    while ((c = s.read() as Uint8Array | null) !== null) onData(c);
    const st = this.#b.streamBaseState;
    const kN = this.#b.kReadBytesOrError;
    const kOff = this.#b.kArrayBufferOffset;
    this.#h.onread = (buf: ArrayBuffer | Uint8Array | undefined, nread?: number) => {
      const n = nread ?? st[kN]!;
      if (n > 0 && buf !== undefined) {
        const off = st[kOff]!;
        onData(
          buf instanceof Uint8Array ? buf.subarray(off, off + n) : new Uint8Array(buf, off, n),
        );
      } else if (n < 0) {
        onEnd(n === UV_EOF ? null : new Deno.errors.ConnectionReset(`TLS read failed (${n})`));
      }
    };
    const err = this.#h.readStart();
    if (err !== 0 && err !== undefined) {
      onEnd(new Deno.errors.ConnectionReset(`TLS readStart failed (${err})`));
    }
  }

  /**
   * Hands `p` to the handle (which keeps it until written). Returns undefined, or a promise to
   * wait on when more than the socket's high-water mark is still being written.
   *
   * One write is in flight at a time, as the socket's own Writable does it: the native handle
   * loses bytes when a second write starts before the first completed (measured: 16 KiB of
   * 512 KiB gone). Buffers handed over meanwhile leave together when it completes.
   */
  write(p: Uint8Array): Promise<void> | undefined {
    this.#pending += p.length;
    if (this.#inFlight) this.#queued.push(p);
    else this.#send(p);
    if (this.#pending <= this.#highWater) return undefined;
    return new Promise((resolve) => {
      this.#drainWaiters.push(resolve);
      this.#hookClose();
    });
  }

  /** Unwritten bytes beyond which {@linkcode RawTlsHandle.write} asks the writer to wait. */
  get highWaterMark(): number {
    return this.#highWater;
  }

  /** Bytes handed to {@linkcode RawTlsHandle.write} whose write has not completed. */
  get buffered(): number {
    return this.#pending;
  }

  /**
   * Undefined when every write has completed, else a promise that settles once they have (or
   * the socket closed): a caller that must not cut a connection mid-response waits on it.
   */
  whenWritten(): Promise<void> | undefined {
    if (this.#pending === 0 || this.#socket.destroyed) return undefined;
    return new Promise((resolve) => {
      this.#flushWaiters.push(resolve);
      this.#hookClose();
    });
  }

  #inFlight = false;
  #queued: Uint8Array[] = [];
  #closeHooked = false;
  #flushWaiters: (() => void)[] = [];

  #hookClose(): void {
    if (this.#closeHooked) return;
    this.#closeHooked = true;
    this.#socket.once("close", () => {
      for (const w of this.#drainWaiters.splice(0)) w();
      for (const w of this.#flushWaiters.splice(0)) w();
    });
  }

  /** The write request, reused: one write is in flight at a time (saves a wrap per write). */
  #req: { handle?: unknown; oncomplete?: (status: number) => void } | null = null;
  #inFlightBytes = 0;

  #send(p: Uint8Array): void {
    let req = this.#req;
    if (req === null) {
      req = this.#req = new this.#b.WriteWrap();
      req.handle = this.#h;
      req.oncomplete = this.#onComplete;
    }
    this.#inFlight = true;
    this.#inFlightBytes = p.length;
    const err = this.#h.writeBuffer(req, p);
    if (err !== 0 && err !== undefined) {
      this.#written(err < 0 ? err : -1);
    } else if (this.#b.streamBaseState[this.#b.kLastWriteWasAsync] === 0) {
      // Done already (never seen in Deno 2.9.6, where every TLS write completes later): this
      // request must not complete anything again, so the next write gets a new one.
      req.oncomplete = () => {};
      this.#req = null;
      this.#written(0);
    }
  }

  readonly #onComplete = (status: number): void => this.#written(status);

  #written(status: number): void {
    this.#inFlight = false;
    this.#pending -= this.#inFlightBytes;
    this.#inFlightBytes = 0;
    if (status < 0) {
      // The socket's `error` and `close` then end the session like any broken connection.
      this.#queued = [];
      this.#pending = 0;
      this.#socket.destroy(new Deno.errors.BrokenPipe(`TLS write failed (${status})`));
    } else if (this.#queued.length > 0) {
      const q = this.#queued;
      this.#queued = [];
      this.#send(q.length === 1 ? q[0]! : _concat(q));
    }
    if (this.#pending <= this.#highWater && this.#drainWaiters.length > 0) {
      for (const w of this.#drainWaiters.splice(0)) w();
    }
    if (this.#pending === 0 && this.#flushWaiters.length > 0) {
      for (const w of this.#flushWaiters.splice(0)) w();
    }
  }
}
