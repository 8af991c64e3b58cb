/**
 * Reads on a `Deno.Conn` straight from the runtime's read op, skipping the `read()` method's
 * wrapper.
 *
 * In Deno 2.9 `TcpConn.read(p)` is an async method around the op: it adds the op's promise to a
 * set (for `unref`), awaits it in a try/finally, deletes it again and maps 0 to null. On the
 * proxy's hot path that wrapper is two promises, a suspended frame and two set operations per
 * read; calling the op directly measured 1.4 µs less CPU per call over the two proxies of the
 * mTLS benchmark (about 5%), with 5% more throughput (measured with `deno task bench mesh`).
 *
 * The op is reached through `Deno[Deno.internal].core.read(rid, buffer)` and the connection's
 * `Symbol(Deno.internal.rid)`, which are internals: everything is detected first, and
 * {@linkcode readerFor} falls back to the connection's own `read` when anything is missing.
 * `SKEIN_OP_READ=off` forces the fallback. The direct read resolves to 0 at end of stream where
 * `read()` gives null, so callers treat both as the end.
 * @module
 */

/** Reads into `p`; resolves to the byte count, or to 0 or null at end of stream. */
export type ReadFn = (p: Uint8Array) => Promise<number | null>;

interface _Core {
  read(rid: number, p: Uint8Array): Promise<number>;
}

/** The runtime's core with its read op, or null where it is missing or turned off. */
function _findCore(): _Core | null {
  if (Deno.env.get("SKEIN_OP_READ") === "off") return null;
  try {
    const internal = (Deno as unknown as Record<symbol, unknown>)[
      (Deno as unknown as { internal: symbol }).internal
    ] as { core?: { read?: unknown } } | undefined;
    const core = internal?.core;
    return typeof core?.read === "function" ? core as _Core : null;
  } catch {
    return null;
  }
}

const _core = _findCore();

/** The connection's resource id: only Deno's own connection objects carry the rid symbol. */
function _ridOf(conn: Deno.Conn): number | null {
  // Wrappers (mux streams, TLS adapters, test fakes) are classes of ours without it.
  const s = Object.getOwnPropertySymbols(conn).find((x) => x.description === "Deno.internal.rid");
  if (s === undefined) return null;
  const rid = (conn as unknown as Record<symbol, unknown>)[s];
  return typeof rid === "number" && Number.isInteger(rid) && rid >= 0 ? rid : null;
}

/** Whether direct op reads are in use in this process (false: every reader is `conn.read`). */
export function opReadAvailable(): boolean {
  return _core !== null;
}

/**
 * The cheapest reader for `conn`: the read op on its resource for Deno's own connections, else
 * its `read` method. Make it once per connection; it must not be used after `conn` is closed.
 */
export function readerFor(conn: Deno.Conn): ReadFn {
  const core = _core;
  const rid = core === null ? null : _ridOf(conn);
  if (core !== null && rid !== null) return (p) => core.read(rid, p);
  return (p) => conn.read(p);
}

/** Whether `readerFor(conn)` reads through the op directly (for tests and diagnostics). */
export function readsDirectly(conn: Deno.Conn): boolean {
  return _core !== null && _ridOf(conn) !== null;
}
