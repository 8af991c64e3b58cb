/**
 * A `Deno.Conn` (a TCP connection, or the mesh's mTLS connection wrappers) as the node stream
 * `node:http2` sessions run on. The bytes the HTTP/1 forwarder read before it handed the
 * connection over come out first.
 * @module
 */
import { Duplex } from "node:stream";
import { closeQuietly } from "../conn/mod.ts";

/** Read size per `conn.read`, in bytes. */
const READ_BYTES = 64 * 1024;

/** A node Duplex over `conn`; destroying it closes `conn`. */
export function duplexOf(conn: Deno.Conn, initial?: Uint8Array): Duplex {
  let reading = false;
  let ended = false;
  const pump = async () => {
    if (reading || ended) return;
    reading = true;
    try {
      while (!ended) {
        const buf = new Uint8Array(READ_BYTES);
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
        if (!d.push(buf.subarray(0, n))) return;
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
      conn.write(chunk).then(async (n) => {
        // Deno.Conn.write may take fewer bytes than given: send the rest.
        let off = n;
        while (off < chunk.length) off += await conn.write(chunk.subarray(off));
        cb();
      }, (e) => cb(e as Error));
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
