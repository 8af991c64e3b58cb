/**
 * The byte-stream abstraction the transport runs on, with plain-TCP defaults.
 *
 * A TLS implementation (node:tls with `requestCert`) slots in by providing a `Dialer` and a
 * `ListenerFactory` whose streams report the verified certificate through `peerIdentity()`;
 * the transport then asks its `authorizePeer` hook whether that identity may speak for the
 * node id it claims.
 * @module
 */

import type { NodeId } from "../../common/ids.ts";

/** Where a node listens or is reached. */
export interface PeerAddress {
  /** Host name or IP literal. */
  readonly hostname: string;
  /** TCP port; 0 when listening asks the OS to pick one. */
  readonly port: number;
}

/** What the secure channel proved about the other end (empty for plain TCP). */
export interface PeerIdentity {
  /** URI SANs of the verified peer certificate, e.g. `spiffe://skein.local/control/cp-1`. */
  readonly uris: readonly string[];
}

/** A bidirectional byte stream: a TCP connection, a TLS session, or a test double. */
export interface ByteStream {
  /** Reads into `buf`; resolves to the byte count, or null at end of stream. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes some prefix of `data`; resolves to the byte count written. */
  write(data: Uint8Array): Promise<number>;
  /** Closes the stream; pending reads and writes reject or end. Must be idempotent. */
  close(): void;
  /** The verified identity of the other end, or null when the channel proves none. */
  peerIdentity(): PeerIdentity | null;
  /** The remote address, for logs only. */
  readonly remote: string;
}

/** Opens outbound streams. */
export interface Dialer {
  /**
   * Connects to `addr`; `signal` aborts the attempt (e.g. on a dial timeout or shutdown).
   * `peer` is the node meant, so a TLS dialer can check the server is that node.
   */
  dial(addr: PeerAddress, signal: AbortSignal, peer?: NodeId): Promise<ByteStream>;
}

/** An open listening socket. */
export interface StreamListener {
  /** The bound address (the real port when port 0 was requested). */
  readonly addr: PeerAddress;
  /** Resolves with the next inbound stream; rejects once the listener is closed. */
  accept(): Promise<ByteStream>;
  /** Stops listening. Idempotent. */
  close(): void;
}

/** Creates listeners. */
export interface ListenerFactory {
  /** Binds `addr`. */
  listen(addr: PeerAddress): Promise<StreamListener>;
}

/** Decides whether a channel identity may act as `node`; plain TCP passes null. */
export type PeerAuthorizer = (
  node: NodeId,
  identity: PeerIdentity | null,
  direction: "inbound" | "outbound",
) => boolean;

/** Accepts every peer: only for plain TCP on a trusted network, and for tests. */
export function allowAnyPeer(): boolean {
  return true;
}

/** Requires the channel identity `spiffe://<trustDomain>/control/<node>` (SPEC section 5). */
export function spiffeControlAuthorizer(trustDomain: string): PeerAuthorizer {
  return (node, identity) => {
    if (identity === null) return false;
    const want = `spiffe://${trustDomain}/control/${node}`;
    return identity.uris.includes(want);
  };
}

/** Wraps a Deno TCP connection as a ByteStream. */
export class TcpStream implements ByteStream {
  readonly remote: string;
  readonly #conn: Deno.Conn;
  #closed = false;

  /** Wraps `conn`, disabling Nagle: the transport coalesces writes itself. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    const r = conn.remoteAddr as Deno.NetAddr;
    this.remote = `${r.hostname}:${r.port}`;
    try {
      (conn as Deno.TcpConn).setNoDelay(true);
    } catch {
      // Not every Conn is TCP (tests may pass other kinds); latency is all we lose.
    }
  }

  /** Reads into `buf`. */
  read(buf: Uint8Array): Promise<number | null> {
    return this.#conn.read(buf);
  }

  /** Writes a prefix of `data`. */
  write(data: Uint8Array): Promise<number> {
    return this.#conn.write(data);
  }

  /** Closes the connection once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime after an error; nothing left to release.
    }
  }

  /** Plain TCP proves nothing about the peer. */
  peerIdentity(): PeerIdentity | null {
    return null;
  }
}

/** The default dialer: plain TCP via `Deno.connect`. */
export const tcpDialer: Dialer = {
  async dial(addr, signal) {
    const conn = await Deno.connect({ hostname: addr.hostname, port: addr.port, signal });
    return new TcpStream(conn);
  },
};

/** The default listener factory: plain TCP via `Deno.listen`. */
export const tcpListenerFactory: ListenerFactory = {
  listen(addr) {
    const l = Deno.listen({ hostname: addr.hostname, port: addr.port, transport: "tcp" });
    const bound = l.addr as Deno.NetAddr;
    let closed = false;
    return Promise.resolve({
      addr: { hostname: bound.hostname, port: bound.port },
      async accept() {
        return new TcpStream(await l.accept());
      },
      close() {
        if (closed) return;
        closed = true;
        try {
          l.close();
        } catch {
          // Already closed.
        }
      },
    });
  },
};

/** Writes all of `data`, looping over partial writes. */
export async function writeAll(stream: ByteStream, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const n = await stream.write(at === 0 ? data : data.subarray(at));
    if (n <= 0) throw new Error(`write to ${stream.remote} made no progress`);
    at += n;
  }
}
