/**
 * Runs an {@linkcode H2Connection} over a `Deno.Conn`: a plain TCP connection (read straight
 * from the runtime's op, as the HTTP/1 path reads) or the mesh's node:tls wrapper, which
 * pushes what arrives and queues writes. The bytes the HTTP/1 forwarder read before it handed
 * the connection over are fed first.
 * @module
 */
import { closeQuietly, noDelay } from "../../conn/mod.ts";
import { readerFor } from "../../forward/mod.ts";
import type { H2Connection } from "./connection.ts";
import type { Wire } from "./writer.ts";

/** Read buffer per plain connection, in bytes (the connection copies what it keeps). */
const READ_BYTES = 64 * 1024;

/** A connection that can push what arrives and queue writes (the mesh's node:tls wrapper). */
export interface PushConn extends Deno.Conn {
  pushTo(onData: (chunk: Uint8Array) => void, onEnd: (err: Error | null) => void): void;
  writeQueued(p: Uint8Array): Promise<void> | undefined;
}

/** Whether `conn` is a {@linkcode PushConn}. */
export function pushes(conn: Deno.Conn): conn is PushConn {
  const c = conn as Partial<PushConn>;
  return typeof c.pushTo === "function" && typeof c.writeQueued === "function";
}

/** Starts `h2` on `conn`, feeding `initial` first; `conn` is closed when `h2` ends. */
export function runOver(h2: H2Connection, conn: Deno.Conn, initial?: Uint8Array): void {
  // Many streams share the connection: no write may wait on Nagle for an earlier one's ACK
  // (the inbound's TLS listener leaves it on for connections that chose ALPN h2).
  noDelay(conn);
  let last: Promise<void> | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    // Whatever was queued (a GOAWAY) goes out before the connection closes.
    if (last === undefined) closeQuietly(conn);
    else last.finally(() => closeQuietly(conn)).catch(() => {});
  };
  if (pushes(conn)) {
    const wire: Wire = {
      write: (b) => {
        const p = conn.writeQueued(b);
        if (p !== undefined) last = p;
        return p;
      },
      close,
    };
    h2.start(wire);
    if (initial !== undefined && initial.length > 0) h2.feed(initial);
    conn.pushTo((c) => h2.feed(c), () => h2.ended());
    return;
  }
  const wire: Wire = {
    write: (b) => last = _writeAll(conn, b),
    close,
  };
  h2.start(wire);
  if (initial !== undefined && initial.length > 0) h2.feed(initial);
  void _readLoop(h2, conn);
}

async function _readLoop(h2: H2Connection, conn: Deno.Conn): Promise<void> {
  const read = readerFor(conn);
  const buf = new Uint8Array(READ_BYTES);
  for (;;) {
    let n: number | null;
    try {
      n = await read(buf);
    } catch {
      n = null;
    }
    if (!n || h2.closed) break;
    h2.feed(buf.subarray(0, n));
  }
  h2.ended();
}

/** Writes all of `b` (Deno.Conn.write may take fewer bytes than given). */
async function _writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(off === 0 ? b : b.subarray(off));
}
