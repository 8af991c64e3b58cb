/**
 * The try layer: one try of the exchange against one endpoint. Takes a pooled connection (or
 * opens one), arms the per-try budget, sends the head with whatever body is buffered, starts
 * the body pump if more is to come, reads the response head (relaying interim 1xx), and hands
 * the response to the relay layer. A failed try leaves its outcome in the exchange for the
 * retry layer; a 5xx the retry policy wants retried is held back from the client.
 *
 * One async function on purpose: the usual request costs one async layer here, each helper
 * it calls is synchronous or runs only on a rarer path.
 * @module
 */
import {
  type ChunkedFramer,
  ChunkedFramer as Framer,
  findHeadEnd,
  HttpParseError,
  newHeadScan,
  parseResponseHead,
  resetHeadScan,
  type ResponseHead,
  writeForwardedRequestHead,
  writeForwardedResponseHead,
} from "../http1/mod.ts";
import { turnNow } from "./batch_clock.ts";
import { writeAll, writeNow } from "../conn/io.ts";
import { ConnectError, type UpstreamConn } from "./pool.ts";
import type { Outcome, RouteDecision } from "./types.ts";
import { Done, type Exchange } from "./exchange.ts";
import type { Session } from "./session.ts";
import { answer } from "./layer_answer.ts";
import { startPump } from "./layer_request_body.ts";
import { countBody, endRelay, relayStreamed, startWholeResponse } from "./layer_relay.ts";
import { mayRetry } from "./layer_retry_rule.ts";
import { splice } from "./layer_upgrade.ts";

/**
 * One try of the exchange's decision against `x.ep`. Resolves to how the connection goes on
 * once the client got a response (or is gone); null when the try failed and nothing reached
 * the client: then `x.outcome`, `x.sentUpstream`, `x.bodyError` and `x.backoff` say what
 * happened. A replayable body stays in the client buffer until the exchange is answered.
 */
export async function tryOnce(s: Session): Promise<Done | null> {
  const f = s.f, x = s.x, head = x.head!, decision = x.decision!, ep = x.ep!;
  const replayable = x.replayable;
  x.fresh = false;
  // At most twice: a pooled connection closed just as it was reused is tried once more fresh.
  while (true) {
    // The first try starts when the exchange did: one clock read less per request.
    const t0 = x.attempt === 0 && !x.fresh ? x.started : turnNow();
    let uc: UpstreamConn | null = x.fresh ? null : f.upstreams.takeIdle(ep);
    if (uc === null) {
      try {
        uc = await f.upstreams.acquire(ep, true);
      } catch (e) {
        if (!(e instanceof ConnectError)) throw e;
        const o: Outcome = { kind: "connect_failure", reason: e.reason };
        decision.onResult(ep, o, turnNow() - t0);
        return _failed(x, o, false, null);
      }
    }
    _armTryTimer(s, decision, uc, t0);

    const cl = head.contentLength;
    let bodyLeft: number;
    try {
      bodyLeft = _writeRequest(s, decision);
    } catch (e) {
      f.timers.disarm(x);
      f.upstreams.discard(uc);
      if (!(e instanceof HttpParseError)) throw e;
      return _failed(x, { kind: "reset" }, false, e);
    }
    const framer = head.chunked ? x.framer : null;
    let sentUpstream = false;
    let responseStarted = false;
    try {
      // A mux stream takes the head at once; otherwise awaiting the write itself, not writeAll,
      // saves a promise when it takes everything.
      const out = s.out.view();
      if (!writeNow(uc.conn, out)) {
        const n = await uc.conn.write(out);
        if (n < out.length) await writeAll(uc.conn, out.subarray(n));
      }
    } catch (e) {
      f.timers.disarm(x);
      f.upstreams.discard(uc);
      // A refused stream took nothing; but only a replayable body can be sent again whole.
      const o: Outcome = x.timedOut
        ? { kind: "timeout" }
        : replayable && _refusedUnread(e)
        ? { kind: "connect_failure", reason: "refused by the callee" }
        : { kind: "reset" };
      decision.onResult(ep, o, turnNow() - t0);
      return _failed(x, o, sentUpstream, null);
    }
    sentUpstream = true;

    x.bodyError = null;
    x.clientGone = false;
    const pump = (framer !== null && !framer.done) || bodyLeft > 0
      ? startPump(s, uc, framer, bodyLeft)
      : null;

    // Read the response head, relaying interim 1xx responses.
    let res: ResponseHead;
    let filled = 0;
    let start = 0;
    const scan = newHeadScan(0);
    try {
      while (true) {
        const end = filled > start
          ? findHeadEnd(uc.buf, filled, scan, f.opts.limits.maxHeadBytes)
          : -1;
        if (end < 0) {
          if (filled === uc.buf.length) {
            if (start === 0) {
              // A head larger than the buffer: grow up to the head limit (findHeadEnd enforces it).
              const next = new Uint8Array(
                Math.min(uc.buf.length * 2, f.opts.limits.maxHeadBytes + 1024),
              );
              if (next.length <= uc.buf.length) {
                throw new HttpParseError("head_too_large", 502, "response head too large");
              }
              next.set(uc.buf);
              uc.buf = next;
              continue;
            }
            uc.buf.copyWithin(0, start, filled);
            filled -= start;
            scan.start -= start;
            scan.lineStart -= start;
            scan.pos -= start;
            start = 0;
          }
          let n: number | null;
          if (uc.pending !== null) {
            // The read started while idle landed at offset 0 of the empty buffer: where we are.
            const p = uc.pending;
            uc.pending = null;
            n = await p;
          } else {
            n = await uc.read(uc.buf.subarray(filled));
          }
          if (!n) throw new Deno.errors.UnexpectedEof("upstream closed before responding");
          filled += n;
          responseStarted = true;
          continue;
        }
        const r = parseResponseHead(uc.buf, scan.start, end, f.opts.limits);
        start = end;
        if (r.status === 101 && !head.upgrade) {
          // The upstream now speaks something else on a connection we would pool: drop it.
          throw new HttpParseError(
            "unsolicited_upgrade",
            502,
            "101 Switching Protocols to a request that asked for no upgrade",
          );
        }
        if (r.status >= 200 || r.status === 101) {
          res = r;
          break;
        }
        // Interim response (100 Continue, 103 Early Hints): pass it on and keep reading.
        const w = s.out;
        w.reset();
        writeForwardedResponseHead(w, r, false);
        await writeAll(s.conn, w.view());
        resetHeadScan(scan, start);
      }
    } catch (e) {
      f.timers.disarm(x);
      f.upstreams.discard(uc);
      if (pump !== null) await pump;
      if (x.bodyError !== null) return _failed(x, { kind: "reset" }, sentUpstream, x.bodyError);
      if (x.clientGone) {
        // The client left mid-body: no verdict on the endpoint (outlier detection would eject a
        // healthy one for callers that merely hung up).
        return _failed(x, { kind: "reset" }, sentUpstream, null);
      }
      if (e instanceof HttpParseError) {
        const o: Outcome = { kind: "response", status: 502 };
        decision.onResult(ep, o, turnNow() - t0);
        if (replayable && cl > 0) s.pos += cl;
        await answer(s, {
          status: 502,
          code: "bad_upstream_response",
          message: `bad response from ${ep.key}: ${e.message}`,
          close: true,
          headOnly: false,
        });
        return Done.Close;
      }
      if (!responseStarted && !x.timedOut && replayable && _refusedUnread(e)) {
        // A mux stream the callee turned down unread (it is draining): like a refused
        // connect, so retry policy may send it anywhere else, whatever the method.
        const o: Outcome = { kind: "connect_failure", reason: "refused by the callee" };
        decision.onResult(ep, o, turnNow() - t0);
        return _failed(x, o, false, null);
      }
      if (uc.reused && !responseStarted && !x.timedOut && replayable && !x.fresh) {
        // A pooled connection the upstream closed just as we reused it: not the endpoint's
        // fault, so try once more on a fresh connection before involving retry policy.
        x.fresh = true;
        continue;
      }
      const o: Outcome = x.timedOut ? { kind: "timeout" } : { kind: "reset" };
      decision.onResult(ep, o, turnNow() - t0);
      return _failed(x, o, sentUpstream, null);
    }
    f.timers.disarm(x);
    const outcome: Outcome = { kind: "response", status: res.status };
    decision.onResult(ep, outcome, turnNow() - t0);

    if (
      res.status >= 500 && mayRetry({
        outcome,
        replayable,
        idempotent: x.idempotent,
        sentUpstream,
        bodyStreaming: pump !== null,
        draining: f.draining,
        overallSpent: false,
      })
    ) {
      // Policy may retry a 5xx as long as nothing reached the client.
      const backoff = decision.retry(x.attempt, outcome);
      if (backoff !== null) {
        f.upstreams.discard(uc);
        _failed(x, outcome, sentUpstream, null);
        x.backoff = backoff;
        return null;
      }
    }

    if (res.status === 101 && head.upgrade) {
      if (replayable && cl > 0) s.pos += cl;
      return await splice(s, uc, res, start, filled, decision.stillAllowed);
    }
    const body = pump === null ? startWholeResponse(s, uc, res, start, filled) : -1;
    if (body < 0) return await relayStreamed(s, uc, res, start, filled, pump);
    // The whole response is in `s.out`: written here, so the usual response adds no async layer.
    let ok = true;
    try {
      const out = s.out.view();
      if (!writeNow(s.conn, out)) {
        const n = await s.conn.write(out);
        if (n < out.length) await writeAll(s.conn, out.subarray(n));
      }
      countBody(s, body);
    } catch {
      ok = false;
    }
    return endRelay(s, uc, ok);
  }
}

/** Records a failed try in the exchange; returns null, the failed try's result. */
function _failed(
  x: Exchange,
  o: Outcome,
  sentUpstream: boolean,
  bodyError: HttpParseError | null,
): null {
  x.outcome = o;
  x.sentUpstream = sentUpstream;
  x.bodyError = bodyError;
  x.backoff = -1;
  return null;
}

/**
 * Bounds the wait for the response head by the per-try and the remaining overall budget,
 * counted from when the connection is in hand: a slow connect (a new mux session's TLS
 * handshake) must not eat the per-try time. A pooled connection needs no new clock read.
 */
function _armTryTimer(s: Session, decision: RouteDecision, uc: UpstreamConn, t0: number): void {
  const x = s.x;
  const from = uc.reused ? t0 : turnNow();
  let budget = decision.perTryTimeoutMs;
  if (decision.timeoutMs > 0) {
    const left = Math.max(1, decision.timeoutMs - (from - x.started));
    budget = budget > 0 ? Math.min(budget, left) : left;
  }
  x.timedOut = false;
  if (budget > 0) {
    x.tryConn = uc;
    s.f.timers.arm(x, budget, from);
  }
}

/**
 * Writes the forwarded request head into `s.out` with the body bytes already buffered (they
 * go out in one write). Returns how many fixed-length body bytes are still to come; a chunked
 * body's framer is left in `x.framer`. Throws the client's framing error.
 */
function _writeRequest(s: Session, decision: RouteDecision): number {
  const x = s.x, head = x.head!;
  const w = s.out;
  w.reset();
  writeForwardedRequestHead(w, head, s.clientAddr, decision.extraRequestHeaders, s.callerLine);
  let bodyLeft = head.chunked ? 0 : Math.max(0, head.contentLength);
  if (head.chunked) {
    // The listener's body limit holds for chunked bodies too (413 once over).
    const framer: ChunkedFramer = x.framer ??= new Framer(s.f.opts.limits.maxBodyBytes);
    framer.reset();
    const end = framer.feed(s.buf, s.pos, s.len);
    w.bytes(s.buf, s.pos, end);
    s.pos = end;
  } else if (bodyLeft > 0) {
    const take = Math.min(bodyLeft, s.len - s.pos);
    w.bytes(s.buf, s.pos, s.pos + take);
    bodyLeft -= take;
    if (!x.replayable) s.pos += take;
  }
  return bodyLeft;
}

/** Whether `e` says the callee turned the call down before reading it (a refused mux stream). */
function _refusedUnread(e: unknown): boolean {
  return e instanceof Deno.errors.ConnectionRefused;
}
