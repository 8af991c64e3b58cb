/**
 * Byte-moving helpers over any `Deno.Conn` (plain TCP, mesh TLS, a mux stream): write-all,
 * write-now, pipe, quiet close, no-delay and stream adapters. They sit below both the forwarder
 * and the mux so neither has to import the other for them.
 * @module
 */
/** Writes all of `bytes`, looping over short writes. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    off += await conn.write(off === 0 ? bytes : bytes.subarray(off));
  }
}

/** A connection that can sometimes take a write at once, without a promise (a mux stream). */
interface _TryWrite {
  tryWrite?: (p: Uint8Array) => boolean;
}

/**
 * Writes all of `bytes` now if the connection can take them without waiting (a mux stream with
 * credit: the bytes are copied into its session's queue) and returns true; otherwise writes
 * nothing and returns false, and the caller awaits a write. Saves a promise and a microtask hop
 * per write on the mesh hop.
 */
export function writeNow(conn: Deno.Conn, bytes: Uint8Array): boolean {
  const t = (conn as _TryWrite).tryWrite;
  return t !== undefined && t.call(conn, bytes);
}

/** Closes a connection, ignoring "already closed". */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed: nothing left to release.
  }
}

/** Turns off Nagle's algorithm, where the connection supports it. */
export function noDelay(conn: Deno.Conn): void {
  try {
    (conn as Deno.TcpConn).setNoDelay?.(true);
  } catch {
    // Not a TCP connection or already closed.
  }
}

/** How a {@linkcode pipe} ended. */
export interface PipeResult {
  /** Bytes copied. */
  bytes: number;
  /** Whether the copy ended by a reset or error rather than a clean EOF. */
  failed: boolean;
}

/**
 * Copies `from` to `to` until EOF with one reused buffer (so memory stays flat), then half-closes
 * `to`. Errors end the copy; the caller decides what to close.
 */
export async function pipe(
  from: Deno.Conn,
  to: Deno.Conn,
  buf: Uint8Array,
  onBytes?: (n: number) => void,
): Promise<PipeResult> {
  let total = 0;
  try {
    while (true) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
      total += n;
      onBytes?.(n);
    }
    await to.closeWrite().catch(() => {});
  } catch {
    // A reset on either side ends this direction; the caller tears down the pair.
    return { bytes: total, failed: true };
  }
  return { bytes: total, failed: false };
}

/** The part of a connection that {@linkcode readableOf} and {@linkcode writableOf} use. */
export interface PullConn {
  /** Reads into `p`; null at EOF. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes `p`. */
  write(p: Uint8Array): Promise<number>;
  /** Half-closes. */
  closeWrite(): Promise<void>;
}

/** A `ReadableStream` over `conn`'s reads, for code that wants one (not the hot path). */
export function readableOf(conn: PullConn): ReadableStream<Uint8Array<ArrayBuffer>> {
  return new ReadableStream({
    pull: async (ctl) => {
      const buf = new Uint8Array(16 * 1024);
      const n = await conn.read(buf);
      if (n === null) ctl.close();
      else ctl.enqueue(buf.subarray(0, n));
    },
  });
}

/** A `WritableStream` over `conn`'s writes; closing it half-closes `conn`. */
export function writableOf(conn: PullConn): WritableStream<Uint8Array<ArrayBufferLike>> {
  return new WritableStream({
    write: async (chunk) => {
      await conn.write(chunk);
    },
    close: () => conn.closeWrite(),
  });
}
