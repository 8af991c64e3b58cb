/**
 * The request body's two ways upstream: a small fixed-length body is buffered whole before
 * the first try, so the request can be replayed on another endpoint (and mirrored); any other
 * body is pumped from the client to the upstream while the response is awaited.
 * @module
 */
import type { ChunkedFramer, RequestHead } from "../http1/mod.ts";
import { HttpParseError } from "../http1/mod.ts";
import { writeAll } from "../conn/io.ts";
import type { UpstreamConn } from "./pool.ts";
import type { Session } from "./session.ts";

/** The empty body of a bodiless request (what its mirror copy carries). */
export const NO_BODY = new Uint8Array(0);

/**
 * Whether the body of `head` may be buffered for replay under `maxBytes`: fixed-length, and
 * not awaiting `100 Continue` (the client sends it only once the upstream asked for it).
 */
export function bufferable(head: RequestHead, maxBytes: number): boolean {
  const cl = head.contentLength;
  return !head.chunked && cl > 0 && cl <= maxBytes && !head.expectContinue;
}

/**
 * Buffers a small fixed-length request body whole, setting `x.replayable`. Answers at once
 * when the body is in the buffer already (the usual case), else waits for the rest under the
 * header-read deadline. False (or a promise of false): the client ended first.
 */
export function bufferBody(s: Session): boolean | Promise<boolean> {
  const head = s.x.head!;
  const cl = head.contentLength;
  s.x.replayable = !head.chunked && cl <= 0;
  if (!bufferable(head, s.f.opts.maxRetryBodyBytes)) return true;
  if (s.pos + cl > s.buf.length) s.ensureRoom(cl);
  if (s.len - s.pos >= cl) {
    s.x.replayable = true;
    return true;
  }
  return _readBody(s, cl);
}

async function _readBody(s: Session, cl: number): Promise<boolean> {
  s.waitingBody = true;
  s.deadlineTick = s.f.tick + s.headTicks();
  try {
    while (s.len - s.pos < cl) {
      const n = await s.read(s.buf.subarray(s.len));
      if (!n) return false;
      s.len += n;
    }
  } finally {
    s.waitingBody = false;
  }
  s.x.replayable = true;
  return true;
}

/** The buffered body of a replayable request (for its mirror copy), or null when not buffered. */
export function bufferedBody(s: Session): Uint8Array | null {
  return s.x.replayable ? s.buf.subarray(s.pos, s.pos + s.x.head!.contentLength) : null;
}

/**
 * Starts streaming the rest of the body upstream, concurrently with reading the response (the
 * upstream may answer early, and `Expect: 100-continue` needs the interim response relayed
 * first). `x.pumping` stays true until it ends; a failed pump gives up the connection.
 */
export function startPump(
  s: Session,
  uc: UpstreamConn,
  framer: ChunkedFramer | null,
  left: number,
): Promise<boolean> {
  const x = s.x;
  x.pumping = true;
  return _pumpBody(s, uc, framer, left).then((ok) => {
    x.pumping = false;
    if (!ok) s.f.upstreams.discard(uc);
    return ok;
  });
}

/** Streams the rest of the request body upstream; false when either side failed. */
async function _pumpBody(
  s: Session,
  uc: UpstreamConn,
  framer: ChunkedFramer | null,
  left: number,
): Promise<boolean> {
  try {
    while (framer !== null ? !framer.done : left > 0) {
      if (s.pos === s.len) {
        s.pos = s.len = 0;
        let n: number | null;
        try {
          n = await s.read(s.buf);
        } catch (e) {
          s.x.clientGone = true;
          throw e;
        }
        if (!n) {
          s.x.clientGone = true;
          return false;
        }
        s.len = n;
      }
      let stop: number;
      if (framer !== null) {
        stop = framer.feed(s.buf, s.pos, s.len);
      } else {
        stop = s.pos + Math.min(left, s.len - s.pos);
        left -= stop - s.pos;
      }
      await writeAll(uc.conn, s.buf.subarray(s.pos, stop));
      s.f.stats.requestBodyBytes += stop - s.pos;
      s.pos = stop;
    }
    return true;
  } catch (e) {
    if (e instanceof HttpParseError) s.x.bodyError = e;
    return false;
  }
}
