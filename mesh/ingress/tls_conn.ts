/**
 * An ingress client's TLS connection read and written through the native handle under its
 * `node:tls` socket ({@linkcode RawTlsHandle}), for the forwarder's pull reads and writes.
 *
 * The socket's Readable and Writable machinery (buffering, events, a `nextTick` and a callback
 * per write) is most of the JavaScript a TLS read or write costs, and a write through it
 * resolves only once the native write has completed, a turn of the event loop later. Here a
 * response is handed to the handle and the forwarder goes on at once ({@linkcode
 * IngressTlsConn.tryWrite}); the handle keeps its own copy. What was handed over is still
 * written before the connection closes (bounded by {@linkcode CLOSE_FLUSH_TIMEOUT_MS}), as the
 * kernel does for a plain socket.
 * @module
 */
import type tls from "node:tls";
import { RawTlsHandle } from "../../common/tls/raw_handle.ts";
import { ChunkQueue } from "../../common/chunk_queue.ts";
import { MAX_UNREAD_BYTES } from "../../common/tls/socket_io.ts";
import { readableOf, writableOf } from "../conn/io.ts";

/** How long a close waits for handed-over bytes to be written before it cuts the connection. */
export const CLOSE_FLUSH_TIMEOUT_MS = 5_000;

/** A client's TLS connection over the socket's native handle; see the module doc. */
export class IngressTlsConn implements Deno.Conn {
  /** Clients of the ingress present no certificate. */
  readonly peerIdentity: null = null;
  /** Local address. */
  readonly localAddr: Deno.NetAddr;
  /** Remote address. */
  readonly remoteAddr: Deno.NetAddr;
  readonly #socket: tls.TLSSocket;
  readonly #raw: RawTlsHandle;
  readonly #maxUnread: number;
  /** Received chunks not read yet; the socket flows into them. */
  readonly #queue = new ChunkQueue();
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #waiter: (() => void) | null = null;

  private constructor(socket: tls.TLSSocket, raw: RawTlsHandle, maxUnread: number) {
    this.#socket = socket;
    this.#raw = raw;
    this.#maxUnread = maxUnread;
    this.localAddr = {
      transport: "tcp",
      hostname: socket.localAddress ?? "",
      port: socket.localPort ?? 0,
    };
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    socket.on("error", (e: Error) => {
      this.#error ??= e;
      this.#wake();
    });
    socket.on("close", this.#onEnd);
    raw.start(this.#onData, (err) => {
      if (err !== null) this.#error ??= err;
      this.#onEnd();
    });
  }

  /**
   * Takes over a socket whose handshake is done, or returns null where the runtime lacks the
   * native handle (or `SKEIN_TLS_RAW_HANDLE=off`): the caller then uses the socket's own API.
   * `maxUnread` caps what the client may send ahead of the forwarder's reads.
   */
  static of(socket: tls.TLSSocket, maxUnread = MAX_UNREAD_BYTES): IngressTlsConn | null {
    const raw = RawTlsHandle.of(socket);
    return raw === null ? null : new IngressTlsConn(socket, raw, maxUnread);
  }

  readonly #onData = (c: Uint8Array) => {
    if (this.#closed || this.#error !== null) return;
    this.#queue.push(c);
    if (this.#queue.size > this.#maxUnread) {
      // The handle keeps reading whatever the forwarder does: this cap bounds what we hold.
      this.#error = new Deno.errors.InvalidData(
        `client sent over ${this.#maxUnread} bytes the proxy has not taken`,
      );
      this.#queue.clear();
      this.#socket.destroy();
    }
    this.#wake();
  };

  readonly #onEnd = () => {
    this.#ended = true;
    this.#wake();
  };

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  /** Reads into `p`; null at end of stream; `BadResource` once closed here. */
  async read(p: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.#closed) throw new Deno.errors.BadResource("connection closed");
      const k = this.#queue.readInto(p);
      if (k > 0 || (p.length === 0 && !this.#queue.empty)) return k;
      if (this.#error !== null) throw new Deno.errors.ConnectionReset(this.#error.message);
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }

  /**
   * Hands a copy of `p` to the handle and returns true when that keeps what is unwritten under
   * the socket's high-water mark; else takes nothing and returns false (the caller then awaits
   * {@linkcode IngressTlsConn.write}). A failed write ends the connection: the next read fails.
   */
  tryWrite(p: Uint8Array): boolean {
    if (this.#closed || this.#socket.destroyed) return false;
    if (this.#raw.buffered + p.length > this.#raw.highWaterMark) return false;
    this.#raw.write(p.slice());
    return true;
  }

  /** Writes all of `p` (a copy: the caller may reuse `p` at once); waits while the backlog is high. */
  async write(p: Uint8Array): Promise<number> {
    if (this.#closed || this.#socket.destroyed) {
      throw new Deno.errors.BrokenPipe("connection closed");
    }
    const w = this.#raw.write(p.slice());
    if (w !== undefined) await w;
    if (this.#socket.destroyed) throw new Deno.errors.BrokenPipe("connection closed");
    return p.length;
  }

  /** Sends close_notify and FIN once what was handed over is written; reading goes on. */
  async closeWrite(): Promise<void> {
    await this.#written();
    if (!this.#closed && !this.#socket.destroyed) this.#socket.end();
  }

  /**
   * Closes the connection: what was handed over is written first (bounded), then the socket
   * goes; a pending read fails with `BadResource` at once, like `Deno.Conn`.
   */
  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("connection already closed");
    this.#closed = true;
    this.#queue.clear();
    this.#wake();
    if (this.#raw.buffered === 0) this.#socket.destroy();
    else void this.#written().then(() => this.#socket.destroy());
  }

  /** Settles once handed-over bytes are written, the socket closed, or the bound passed. */
  async #written(): Promise<void> {
    const w = this.#raw.whenWritten();
    if (w === undefined) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([w, new Promise((r) => (timer = setTimeout(r, CLOSE_FLUSH_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }

  /** Disables Nagle's algorithm on the underlying TCP socket. */
  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  /** Keeps the process alive while open (the default). */
  ref(): void {
    this.#socket.ref();
  }

  /** Lets the process exit while open. */
  unref(): void {
    this.#socket.unref();
  }

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
    if (!this.#closed) this.close();
  }
}
