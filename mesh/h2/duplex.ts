/**
 * A `Deno.Conn` (a TCP connection, or the mesh's mTLS connection wrappers) as the node stream
 * `node:http2` sessions run on. The bytes the HTTP/1 forwarder read before it handed the
 * connection over come out first.
 * @module
 */
import { Duplex } from "node:stream";
import { closeQuietly } from "../conn/mod.ts";

/** Read buffer per connection, in bytes; each read hands on a copy of what arrived. */
const READ_BYTES = 16 * 1024;

/** A node Duplex over `conn`; destroying it closes `conn`. */
export function duplexOf(conn: Deno.Conn, initial?: Uint8Array): Duplex {
  let reading = false;
  let ended = false;
  const buf = new Uint8Array(READ_BYTES);
  const pump = async () => {
    if (reading || ended) return;
    reading = true;
    try {
      while (!ended) {
        let n: number | null;
        try {
          n = await conn.read(buf);
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
      let n = 0;
      for (const c of chunks) n += c.chunk.length;
      const all = new Uint8Array(n);
      let o = 0;
      for (const c of chunks) {
        all.set(c.chunk, o);
        o += c.chunk.length;
      }
      _writeAll(conn, all).then(() => cb(), (e) => cb(e as Error));
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
