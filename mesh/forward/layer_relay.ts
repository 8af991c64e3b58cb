/**
 * The relay layer: the response head and body from the upstream to the client. A response
 * whose body arrived with its head (the usual small one) goes out in one write that the caller
 * makes itself ({@linkcode startWholeResponse} + {@linkcode endRelay}), so it costs no async
 * layer of its own; longer bodies, chunked ones and bodies delimited by close stream here.
 * @module
 */
import {
  ChunkedFramer,
  responseBodyKind,
  type ResponseHead,
  writeForwardedResponseHead,
} from "../http1/mod.ts";
import { pipe, writeAll, writeNow } from "../conn/io.ts";
import type { UpstreamConn } from "./pool.ts";
import { Done } from "./exchange.ts";
import type { Session } from "./session.ts";

/** Response bytes coalesced with the head into one write, in bytes. */
export const COALESCE_BYTES = 16 * 1024;

/** Whether the client connection closes after this response. */
function _closes(s: Session, kind: string): boolean {
  const head = s.x.head!;
  return !head.keepAlive || head.versionMinor === 0 || s.f.draining || kind === "close";
}

/**
 * When the whole response is in `uc.buf[start, filled)`, writes its head and body into
 * `s.out` and returns the body's length; else returns -1 and changes nothing.
 */
export function startWholeResponse(
  s: Session,
  uc: UpstreamConn,
  res: ResponseHead,
  start: number,
  filled: number,
): number {
  const head = s.x.head!;
  const kind = responseBodyKind(head.method, res);
  let body: number;
  if (kind === "none") body = 0;
  else if (kind === "length" && res.contentLength <= Math.min(filled - start, COALESCE_BYTES)) {
    body = res.contentLength;
  } else return -1;
  const x = s.x;
  x.closeClient = _closes(s, kind);
  // Bytes beyond the body: the upstream connection is out of step.
  x.reuseUpstream = res.keepAlive && !head.upgrade && filled === start + body;
  const w = s.out;
  w.reset();
  writeForwardedResponseHead(w, res, x.closeClient);
  if (body > 0) w.bytes(uc.buf, start, start + body);
  // Set before the write: if the write fails midway the client may still have seen the head.
  x.sentStatus = res.status;
  return body;
}

/** Counts `n` response body bytes relayed to the client. */
export function countBody(s: Session, n: number): void {
  s.f.stats.responseBodyBytes += n;
  s.x.bodyOut += n;
}

/** After a whole response was written (`ok`) or not: the upstream connection back or gone. */
export function endRelay(s: Session, uc: UpstreamConn, ok: boolean): Done {
  if (ok && s.x.reuseUpstream) s.f.upstreams.release(uc);
  else s.f.upstreams.discard(uc);
  return ok && !s.x.closeClient ? Done.KeepAlive : Done.Close;
}

/**
 * Relays a response whose body does not come whole with its head, and waits for the request
 * body's pump (`pump`) when one runs.
 */
export async function relayStreamed(
  s: Session,
  uc: UpstreamConn,
  res: ResponseHead,
  start: number,
  filled: number,
  pump: Promise<boolean> | null,
): Promise<Done> {
  const f = s.f, x = s.x, head = x.head!;
  const kind = responseBodyKind(head.method, res);
  const close = _closes(s, kind);
  let reusable = res.keepAlive && kind !== "close" && !head.upgrade;
  const w = s.out;
  w.reset();
  writeForwardedResponseHead(w, res, close);
  // Set before the write: if the write fails midway the client may still have seen the head.
  x.sentStatus = res.status;
  let ok = true;
  try {
    if (kind === "none") {
      if (filled > start) reusable = false;
      const out = w.view();
      if (!writeNow(s.conn, out)) await writeAll(s.conn, out);
    } else if (kind === "length") {
      let left = res.contentLength;
      const first = Math.min(left, filled - start, COALESCE_BYTES);
      w.bytes(uc.buf, start, start + first);
      left -= first;
      start += first;
      const out = w.view();
      if (!writeNow(s.conn, out)) {
        const n = await s.conn.write(out);
        if (n < out.length) await writeAll(s.conn, out.subarray(n));
      }
      countBody(s, first);
      if (left > 0) {
        ok = await _relayLength(s, uc, start, filled, left);
        if (x.leftover > 0) reusable = false;
      } else if (filled > start) {
        reusable = false; // bytes beyond the body: the connection is out of step
      }
    } else if (kind === "chunked") {
      const fr = new ChunkedFramer();
      const end = fr.feed(uc.buf, start, filled);
      const first = Math.min(end - start, COALESCE_BYTES);
      w.bytes(uc.buf, start, start + first);
      await writeAll(s.conn, w.view());
      countBody(s, first);
      ok = await _relayChunked(s, uc, fr, start + first, end, filled);
      if (x.leftover > 0) reusable = false;
    } else {
      await writeAll(s.conn, w.view());
      if (filled > start) await writeAll(s.conn, uc.buf.subarray(start, filled));
      const r = await pipe(uc.conn, s.conn, uc.buf, (n) => countBody(s, n));
      ok = !r.failed;
      reusable = false;
    }
  } catch {
    ok = false;
  }
  if (pump !== null && x.pumping) {
    // The upstream answered before the request body was fully sent: neither side can be reused.
    f.upstreams.discard(uc);
    s.abort();
    await pump;
    return Done.Close;
  }
  // A body the pump could not finish leaves the client's connection mid-message: both go.
  const pumped = pump === null || await pump;
  if (!pumped) reusable = false;
  if (ok && reusable) f.upstreams.release(uc);
  else f.upstreams.discard(uc);
  return ok && pumped && !close ? Done.KeepAlive : Done.Close;
}

/** Relays `left` more body bytes after `buf[start, filled)`; false on failure. */
async function _relayLength(
  s: Session,
  uc: UpstreamConn,
  start: number,
  filled: number,
  left: number,
): Promise<boolean> {
  const x = s.x;
  x.leftover = 0;
  try {
    if (filled > start && left > 0) {
      const take = Math.min(left, filled - start);
      await writeAll(s.conn, uc.buf.subarray(start, start + take));
      left -= take;
      countBody(s, take);
      start += take;
    }
    x.leftover = filled - start;
    while (left > 0) {
      const n = await uc.read(uc.buf);
      if (!n) return false;
      const take = Math.min(left, n);
      await writeAll(s.conn, uc.buf.subarray(0, take));
      countBody(s, take);
      left -= take;
      x.leftover = n - take;
    }
    return true;
  } catch {
    return false;
  }
}

/** Relays a chunked body: `buf[from, end)` is framed but unsent; reads more until done. */
async function _relayChunked(
  s: Session,
  uc: UpstreamConn,
  fr: ChunkedFramer,
  from: number,
  end: number,
  filled: number,
): Promise<boolean> {
  const x = s.x;
  x.leftover = 0;
  try {
    if (end > from) {
      await writeAll(s.conn, uc.buf.subarray(from, end));
      countBody(s, end - from);
    }
    x.leftover = filled - end;
    while (!fr.done) {
      const n = await uc.read(uc.buf);
      if (!n) return false;
      const stop = fr.feed(uc.buf, 0, n);
      await writeAll(s.conn, uc.buf.subarray(0, stop));
      countBody(s, stop);
      x.leftover = n - stop;
    }
    return true;
  } catch {
    return false;
  }
}
