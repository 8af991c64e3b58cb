/**
 * Traffic mirroring (`Route` rule `mirror`): a copy of a request, fire-and-forget. The copy is
 * built from the parsed head and the buffered body at once (the client buffer is reused after),
 * carries `x-skein-mirror: 1` and a `-shadow` suffix on its Host, and goes to an endpoint of
 * the mirror target on its own connection; its answer is read only to hold the target's
 * concurrency slot for as long as the mirror takes, then dropped. The caller's response never
 * waits for it. Bodies the forwarder could not buffer (chunked, or larger than its retry
 * buffer) are not mirrored, and copies over the target's concurrency bound are dropped;
 * both are counted.
 * @module
 */
import { ByteWriter, type RequestHead } from "../http1/mod.ts";
import { writeAll } from "../conn/io.ts";
import type { ConnectionPool, UpstreamConn } from "./pool.ts";
import type { Endpoint, MirrorTarget } from "./types.ts";

export type { MirrorTarget } from "./types.ts";

/** How long a copy may hold its slot waiting for the mirror's answer, in ms. */
export const MIRROR_TIMEOUT_MS = 10_000;

/** Fields the copy does not take from the original (framing, routing, and its own markers). */
const _SKIP = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "expect",
  "te",
  "upgrade",
  "x-skein-mirror",
  "x-skein-destination",
]);

/** The Host of a copy: `-shadow` after the host name, before any port. */
export function shadowHost(host: string | null): string {
  const h = host ?? "";
  const colon = h.lastIndexOf(":");
  return colon > 0 && !h.endsWith("]")
    ? `${h.slice(0, colon)}-shadow${h.slice(colon)}`
    : `${h}-shadow`;
}

/** The bytes of a copy of `head` with `body` (already complete), for `target`. */
export function mirrorBytes(head: RequestHead, body: Uint8Array | null, extra: string): Uint8Array {
  const w = new ByteWriter(512, 1 << 30);
  w.latin1(`${head.method} ${head.target} HTTP/1.1\r\n`);
  const names = head.names, values = head.values;
  for (let i = 0; i < names.length; i++) {
    if (head.hop[i] || _SKIP.has(names[i]!)) continue;
    w.latin1(`${names[i]}: ${values[i]}\r\n`);
  }
  w.latin1(`host: ${shadowHost(head.host)}\r\nx-skein-mirror: 1\r\nconnection: close\r\n`);
  if (body !== null && body.length > 0) w.latin1(`content-length: ${body.length}\r\n`);
  w.latin1(extra);
  w.latin1("\r\n");
  if (body !== null && body.length > 0) w.bytes(body);
  return w.view().slice();
}

/**
 * Mirrors one request: `body` is its complete body (empty for none), or null when it could not
 * be buffered (then the copy is dropped and counted). Returns at once; the copy runs detached.
 */
export function mirrorRequest(
  pool: ConnectionPool,
  t: MirrorTarget,
  head: RequestHead,
  body: Uint8Array | null,
): void {
  if (body === null) {
    t.count("dropped_body");
    return;
  }
  const ep = t.pick();
  if (ep === null) {
    t.count("no_endpoint");
    return;
  }
  if (!t.tryAcquire()) {
    t.count("dropped_concurrency");
    return;
  }
  // Copied now: the client buffer holding head and body is reused by the next request.
  const bytes = mirrorBytes(head, body, t.extraHeaders);
  void _send(pool, t, ep, bytes);
}

async function _send(
  pool: ConnectionPool,
  t: MirrorTarget,
  ep: Endpoint,
  bytes: Uint8Array,
): Promise<void> {
  let uc: UpstreamConn | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let sent = false;
  try {
    uc = await pool.acquire(ep, true);
    const held = uc;
    timer = setTimeout(() => pool.discard(held), MIRROR_TIMEOUT_MS);
    await writeAll(uc.conn, bytes);
    sent = true;
    t.count("sent");
    // Hold the slot until the mirror starts answering (or gives up): a slow mirror fills its
    // bound and further copies are dropped, instead of piling up.
    await uc.read(uc.buf);
  } catch {
    if (!sent) t.count("failed");
  } finally {
    clearTimeout(timer);
    if (uc !== null) pool.discard(uc);
    t.release();
  }
}
