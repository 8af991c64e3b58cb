/**
 * Pull-style reads and promise-style writes over a `node:tls` socket, the way `Deno.Conn` works,
 * shared by the proxy's mesh connections and the control transport's streams.
 * @module
 */
import type tls from "node:tls";
import { RawTlsHandle } from "./raw_handle.ts";
import { ChunkQueue } from "../chunk_queue.ts";

/**
 * Most received bytes a connection holds that its reader has not taken; beyond it the connection
 * is closed. Deno 2.9's `node:tls` keeps reading from the network whatever the reader does
 * (pausing the socket, or its handle, does not stop it; plain `node:net` does stop), so this cap
 * is the only bound on what a fast peer can make a slow reader's process hold. Mux sessions
 * never reach it: their streams' credit windows bound what a peer may send.
 */
export const MAX_UNREAD_BYTES = 16 * 1024 * 1024;

/** Reads and writes one verified `node:tls` socket; one read may be outstanding at a time. */
export class TlsSocketIo {
  /** The socket, for addresses and socket options. */
  readonly socket: tls.TLSSocket;
  /** Received chunks not read yet; the socket flows into them. */
  readonly #queue = new ChunkQueue();
  readonly #maxUnread: number;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #waiter: (() => void) | null = null;

  /** Wraps a socket whose handshake is done; `maxUnread` caps what the reader may fall behind. */
  constructor(socket: tls.TLSSocket, maxUnread = MAX_UNREAD_BYTES) {
    this.socket = socket;
    this.#maxUnread = maxUnread;
    // Flowing mode into our own queue: the socket would not push back anyway (see
    // MAX_UNREAD_BYTES), and flowing without pausing is also the one mode in which Deno 2.9's
    // node:tls reliably reports the peer's close after a large transfer.
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("error", (e: Error) => {
      this.#error ??= e;
      this.#wake();
    });
    socket.on("close", this.#onEnd);
  }

  readonly #onData = (c: Uint8Array) => {
    if (this.#closed) return;
    this.#queue.push(c);
    if (this.#queue.size > this.#maxUnread && this.#error === null) {
      this.#error = new Deno.errors.InvalidData(
        `peer sent over ${this.#maxUnread} bytes the reader has not taken`,
      );
      this.#queue.clear();
      this.socket.destroy();
    }
    this.#wake();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#wake();
  };

  /**
   * Switches to push mode for good: every chunk goes to `onData` as it arrives (no read call
   * and no promise per chunk), then `onEnd` once (with the error, if any). Only for a reader
   * that bounds its own memory, since the socket no longer pushes back; call it before any read.
   */
  pushTo(onData: (chunk: Uint8Array) => void, onEnd: (err: Error | null) => void): void {
    this.socket.off("data", this.#onData);
    this.socket.pause();
    let ended = false;
    const end = (err: Error | null) => {
      if (ended) return;
      ended = true;
      onEnd(err);
    };
    const data = (c: Uint8Array) => {
      if (!ended) onData(c);
    };
    this.socket.on("end", () => end(null));
    this.socket.on("close", () => end(null));
    this.socket.on("error", (e: Error) => end(e));
    // Anything that arrived before the switch goes first.
    this.#queue.drain(data);
    if (this.#error !== null) return end(this.#error);
    if (this.#ended || this.#closed) return end(null);
    // Below the socket's streams when the runtime allows it (see raw_handle.ts).
    this.#raw = RawTlsHandle.of(this.socket);
    if (this.#raw !== null) {
      this.#raw.start(data, end);
      return;
    }
    this.socket.on("data", data);
    this.socket.resume();
  }

  /** The native handle once {@linkcode TlsSocketIo.pushTo} took it over; writes go there too. */
  #raw: RawTlsHandle | null = null;

  /** Whether {@linkcode TlsSocketIo.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

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
      if (this.#error) throw new Deno.errors.ConnectionReset(this.#error.message);
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }

  /**
   * Writes all of `p`. Resolves once the socket has taken the bytes off our hands, so the
   * caller may reuse `p` afterwards, as it does with `Deno.Conn`.
   */
  write(p: Uint8Array, what = "connection"): Promise<number> {
    if (this.#closed || this.socket.destroyed) {
      return Promise.reject(new Deno.errors.BrokenPipe(`${what} closed`));
    }
    return new Promise((resolve, reject) => {
      this.socket.write(p, (err?: Error | null) => {
        if (err) reject(new Deno.errors.BrokenPipe(err.message));
        else resolve(p.length);
      });
    });
  }

  /**
   * Hands `p` to the socket without waiting for it to be written: the socket keeps `p`, so the
   * caller must not reuse it. Returns undefined when the socket took it under its buffer
   * limit, else a promise that settles once the socket has drained (or closed). Waiting for
   * every write's completion, as {@linkcode TlsSocketIo.write} does, costs a turn of the event
   * loop per write, which a connection shared by many streams cannot afford.
   */
  writeQueued(p: Uint8Array, what = "connection"): Promise<void> | undefined {
    if (this.#closed || this.socket.destroyed) throw new Deno.errors.BrokenPipe(`${what} closed`);
    if (this.#raw !== null) return this.#raw.write(p);
    if (this.socket.write(p)) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  /** Destroys the socket and wakes a pending read; false when it was already closed here. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.socket.destroy();
    this.#wake();
    return true;
  }
}
