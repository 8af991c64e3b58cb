/**
 * A `Deno.Conn` (a TCP connection, or the mesh's mTLS connection wrappers) as the node stream
 * a `node:http` server runs on (the HTTP/1.1-to-h2 bridge's). Bytes read before the connection
 * was handed over come out first.
 * @module
 */
import { Duplex } from "node:stream";
import { closeQuietly } from "../conn/mod.ts";
import { readerFor } from "../forward/mod.ts";
import { type PushConn, pushes } from "./wire/transport.ts";

/** Read buffer per connection, in bytes; each read hands on a copy of what arrived. */
const READ_BYTES = 16 * 1024;

/** A node Duplex over `conn`; destroying it closes `conn`. */
export function duplexOf(conn: Deno.Conn, initial?: Uint8Array): Duplex {
  if (pushes(conn)) return _pushedDuplex(conn, initial);
  let reading = false;
  let ended = false;
  const buf = new Uint8Array(READ_BYTES);
  // Straight from the runtime's read op for Deno's own connections, as the HTTP/1 path reads.
  const read = readerFor(conn);
  const pump = async () => {
    if (reading || ended) return;
    reading = true;
    try {
      while (!ended) {
        let n: number | null;
        try {
          n = await read(buf);
        } catch {
          n = null;
        }
        if (!n) {
          ended = true;
          d.push(null);
          return;
        }
        // push() false: the session has enough buffered; read() calls pump again.
        if (!d.push(buf.slice(0, n))) return;
      }
    } finally {
      reading = false;
    }
  };
  const d = new Duplex({
    read() {
      void pump();
    },
    write(chunk: Uint8Array, _enc, cb) {
      _writeAll(conn, chunk).then(() => cb(), (e) => cb(e as Error));
    },
    // The frames a session queues while a write is under way leave together: one write (one
    // TLS record, one syscall) instead of one per frame.
    writev(chunks: { chunk: Uint8Array }[], cb) {
      _writeAll(conn, _concat(chunks)).then(() => cb(), (e) => cb(e as Error));
    },
    final(cb) {
      try {
        void conn.closeWrite().catch(() => {});
      } catch {
        // Already closed.
      }
      cb();
    },
    destroy(err, cb) {
      ended = true;
      closeQuietly(conn);
      cb(err);
    },
  });
  if (initial !== undefined && initial.length > 0) d.push(initial);
  return d;
}

/** Writes all of `b` (Deno.Conn.write may take fewer bytes than given). */
async function _writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(off === 0 ? b : b.subarray(off));
}

/**
 * The Duplex of a connection that pushes: chunks go to the session as they arrive and writes
 * are queued on the socket (below its streams where the runtime allows, as the mux does),
 * saving a read call and a promise per chunk. The socket does not wait for the session, as the
 * mux's does not: the session's flow control bounds what a peer may send.
 */
function _pushedDuplex(conn: PushConn, initial?: Uint8Array): Duplex {
  const queue = (b: Uint8Array, cb: (e?: Error | null) => void) => {
    try {
      const p = conn.writeQueued(b);
      if (p === undefined) cb();
      else p.then(() => cb(), (e) => cb(e as Error));
    } catch (e) {
      cb(e as Error);
    }
  };
  const d = new Duplex({
    read() {},
    write(chunk: Uint8Array, _enc, cb) {
      queue(chunk, cb);
    },
    writev(chunks: { chunk: Uint8Array }[], cb) {
      queue(_concat(chunks), cb);
    },
    final(cb) {
      void conn.closeWrite().catch(() => {});
      cb();
    },
    destroy(err, cb) {
      closeQuietly(conn);
      cb(err);
    },
  });
  if (initial !== undefined && initial.length > 0) d.push(initial);
  conn.pushTo((c) => d.push(c), (err) => err === null ? d.push(null) : d.destroy(err));
  return d;
}

function _concat(chunks: { chunk: Uint8Array }[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.chunk.length;
  const all = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    all.set(c.chunk, o);
    o += c.chunk.length;
  }
  return all;
}
