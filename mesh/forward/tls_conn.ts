/**
 * Makes `node:tls` sockets look like the `Deno.Conn` / `Deno.Listener` the forwarder, the pool
 * and the TCP proxy use, so mutual TLS slots in under the byte loop without changing it.
 * `Deno.listenTls` cannot require client certificates, which is why the inbound side of the mesh
 * hop is `node:tls` (see docs/security.md). {@linkcode NativeTlsConn} carries the outbound side
 * when it can use `Deno.connectTls` (see mesh/tls/).
 * @module
 */
import type * as tls from "node:tls";
import type { MtlsServerStats } from "../../common/tls/mod.ts";
import { TlsSocketIo } from "../../common/tls/socket_io.ts";
import { isRefusable } from "../conn/refusable.ts";
import { readableOf, writableOf } from "../conn/io.ts";

/** Idle time before TCP keep-alive probes start on a mesh session's connection, in ms. */
export const MESH_KEEPALIVE_DELAY_MS = 60_000;

/** Verified connections waiting for `accept()`; beyond it new ones are closed. */
export const MAX_PENDING_ACCEPTS = 1024;

/** A `node:tls` socket behind the `Deno.Conn` read/write/closeWrite/close interface. */
export class TlsConn implements Deno.Conn {
  /** The peer's verified SPIFFE id (null when the socket was not verified by us). */
  readonly peerIdentity: string | null;
  /**
   * When the certificate this side presented expires (ms since the epoch; Infinity when not
   * known): the peer closes the connection then, so callers stop using it well before.
   */
  localNotAfter = Infinity;
  /** Local address. */
  readonly localAddr: Deno.NetAddr;
  /** Remote address. */
  readonly remoteAddr: Deno.NetAddr;
  readonly #socket: tls.TLSSocket;
  readonly #io: TlsSocketIo;

  /** Wraps a connected (handshake done) socket; `peerIdentity` is what the caller verified. */
  constructor(socket: tls.TLSSocket, peerIdentity: string | null) {
    this.#socket = socket;
    this.#io = new TlsSocketIo(socket);
    this.peerIdentity = peerIdentity;
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
  }

  /** The ALPN protocol the handshake settled on, or null. */
  get alpnProtocol(): string | null {
    const a = this.#socket.alpnProtocol;
    return typeof a === "string" && a !== "" ? a : null;
  }

  /** Reads into `p`; null at EOF. Only one read may be outstanding, as with `Deno.Conn`. */
  read(p: Uint8Array): Promise<number | null> {
    return this.#io.read(p);
  }

  /**
   * Writes all of `p`. Resolves once the socket has taken the bytes off our hands, so the
   * caller may reuse `p` afterwards, as it does with `Deno.Conn`.
   */
  write(p: Uint8Array): Promise<number> {
    return this.#io.write(p);
  }

  /** See {@linkcode TlsSocketIo.pushTo}: chunks are pushed as they arrive; no reads after. */
  pushTo(onData: (chunk: Uint8Array) => void, onEnd: (err: Error | null) => void): void {
    this.#io.pushTo(onData, onEnd);
  }

  /** See {@linkcode TlsSocketIo.writeQueued}: `p` is kept by the socket, never reuse it. */
  writeQueued(p: Uint8Array): Promise<void> | undefined {
    return this.#io.writeQueued(p);
  }

  /**
   * Sends close_notify and FIN; reading goes on (the sockets are half-open capable).
   * Deno's node:tls hands written bytes to its native layer asynchronously, and an `end()`
   * issued while that layer is still writing can lose the FIN (measured: always lost after a
   * multi-megabyte write, never after a short one). One macrotask lets short writes settle;
   * see the limitation in docs/security.md.
   */
  async closeWrite(): Promise<void> {
    await new Promise((r) => setTimeout(r, 0));
    if (!this.#io.closed) this.#socket.end();
  }

  /** Closes the connection now; a pending read fails with `BadResource`, like `Deno.Conn`. */
  close(): void {
    if (!this.#io.close()) throw new Deno.errors.BadResource("connection already closed");
  }

  /** Disables Nagle's algorithm on the underlying TCP socket. */
  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  /** TCP keep-alive probes on the underlying socket, so a vanished peer is noticed. */
  setKeepAlive(keepAlive = true): void {
    this.#socket.setKeepAlive(keepAlive, MESH_KEEPALIVE_DELAY_MS);
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
    this.#io.close();
  }
}

/**
 * A native `Deno.TlsConn` (rustls, the same op path as a plain `Deno.Conn`) with the peer
 * identity the caller verified. Reads and writes go straight to the native connection: the
 * wrapper adds one call, no promise, per operation. `onClose` runs once, on the first close.
 */
export class NativeTlsConn implements Deno.Conn {
  /** The peer's verified SPIFFE id. */
  readonly peerIdentity: string;
  /** When the certificate this side presented expires; see {@linkcode TlsConn.localNotAfter}. */
  localNotAfter = Infinity;
  /** The ALPN protocol the handshake settled on, or null. */
  readonly alpnProtocol: string | null;
  readonly #c: Deno.TlsConn;
  #onClose: (() => void) | null;

  /** Wraps a connection whose handshake is done and whose server `peerIdentity` was verified. */
  constructor(
    conn: Deno.TlsConn,
    peerIdentity: string,
    onClose?: () => void,
    alpnProtocol: string | null = null,
  ) {
    this.#c = conn;
    this.peerIdentity = peerIdentity;
    this.#onClose = onClose ?? null;
    this.alpnProtocol = alpnProtocol;
  }

  /** Local address. */
  get localAddr(): Deno.NetAddr {
    return this.#c.localAddr;
  }

  /** Remote address. */
  get remoteAddr(): Deno.NetAddr {
    return this.#c.remoteAddr;
  }

  /** Reads into `p`; null at EOF. */
  read(p: Uint8Array): Promise<number | null> {
    return this.#c.read(p);
  }

  /** Writes (part of) `p`, like `Deno.Conn.write`. */
  write(p: Uint8Array): Promise<number> {
    return this.#c.write(p);
  }

  /** Sends close_notify and shuts down our write side. */
  closeWrite(): Promise<void> {
    return this.#c.closeWrite();
  }

  /** Closes the connection now. */
  close(): void {
    const f = this.#onClose;
    this.#onClose = null;
    f?.();
    this.#c.close();
  }

  /**
   * Does nothing: Deno 2.9's `TlsConn` offers no way to set TCP_NODELAY (nor does
   * `connectTls` set it). The forwarder writes each head (and up to 16 KiB of body) in one
   * write, so request/response traffic does not wait on Nagle.
   */
  setNoDelay(_noDelay = true): void {
    const c = this.#c as unknown as { setNoDelay?: (v: boolean) => void };
    c.setNoDelay?.(_noDelay);
  }

  /** Keeps the process alive while open (the default). */
  ref(): void {
    this.#c.ref();
  }

  /** Lets the process exit while open. */
  unref(): void {
    this.#c.unref();
  }

  /** The native stream view. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#c.readable;
  }

  /** The native stream view. */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#c.writable;
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

/** A mesh TLS connection of either kind; both know the peer's verified SPIFFE id. */
export type MeshConn = TlsConn | NativeTlsConn;

/** The verified peer identity of a connection, if it is a mesh TLS connection or a mux stream. */
export function peerIdentityOf(conn: Deno.Conn): string | null {
  if (conn instanceof TlsConn || conn instanceof NativeTlsConn || isRefusable(conn)) {
    return conn.peerIdentity;
  }
  return null;
}

/**
 * A `Deno.Listener` fed by a TLS server's verified connections: the server calls
 * {@linkcode TlsListener.push} from its `onConnection`, the forwarder calls `accept()`.
 */
export class TlsListener implements Deno.Listener<Deno.Conn, Deno.NetAddr> {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  readonly #queue: Deno.Conn[] = [];
  readonly #onClose: () => void;
  readonly #maxPending: number;
  #waiter: { resolve: (c: Deno.Conn) => void; reject: (e: Error) => void } | null = null;
  #closed = false;

  /** The TLS server's counters (handshakes refused by reason), when it has them. */
  readonly stats: MtlsServerStats | null;

  /** Creates a listener for `addr`; `onClose` stops the TLS server behind it. */
  constructor(
    addr: Deno.NetAddr,
    onClose: () => void,
    maxPending = MAX_PENDING_ACCEPTS,
    stats: MtlsServerStats | null = null,
  ) {
    this.addr = addr;
    this.#onClose = onClose;
    this.#maxPending = maxPending;
    this.stats = stats;
  }

  /** Hands over one verified connection; closed at once when the queue is full or we are closed. */
  push(conn: Deno.Conn): void {
    if (this.#closed || this.#queue.length >= this.#maxPending) {
      // A mux stream is refused, which tells the caller it may retry it elsewhere.
      if (isRefusable(conn)) conn.refuse();
      else conn.close();
      return;
    }
    const w = this.#waiter;
    if (w !== null) {
      this.#waiter = null;
      w.resolve(conn);
      return;
    }
    this.#queue.push(conn);
  }

  /** Waits for the next verified connection; fails with `BadResource` once closed. */
  accept(): Promise<Deno.Conn> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    const c = this.#queue.shift();
    if (c !== undefined) return Promise.resolve(c);
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** Stops the server; queued connections are closed, a pending accept fails. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#queue.splice(0)) {
      if (isRefusable(c)) c.refuse();
      else c.close();
    }
    this.#waiter?.reject(new Deno.errors.BadResource("listener closed"));
    this.#waiter = null;
    this.#onClose();
  }

  /** Not meaningful for this listener. */
  ref(): void {}

  /** Not meaningful for this listener. */
  unref(): void {}

  /** Iterates accepted connections until closed. */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<Deno.Conn> {
    while (true) {
      try {
        yield await this.accept();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
    }
  }

  /** Closes the listener. */
  [Symbol.dispose](): void {
    this.close();
  }
}
