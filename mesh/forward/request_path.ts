/**
 * One client connection from accept to its last response: the request path, layer by layer.
 * Read this file top to bottom to follow a request; each layer lives in `layer_*.ts`:
 *
 * 1. read     — the request head, under the idle and header-read deadlines (here);
 * 2. route    — `layer_route.ts`: the router's plan, or its local answer. The router
 *               (`mesh/proxy/router.ts`) runs these in order inside that one call:
 *    a. destination — the listener, `Host` or `x-skein-capability` name the service;
 *    b. authorize   — inbound only: `InboundAuthz.checkHttp` (`mesh/authz/inbound.ts`);
 *    c. limit       — inbound only: `InboundRateLimits.check`
 *                     (`mesh/proxy/inbound_rate_limit.ts`);
 *    d. plan        — `Destination.decide` (`mesh/proxy/destination.ts`): Route rules,
 *                     faults, the circuit breaker's in-flight slot
 *                     (`mesh/resilience/shared_limits.ts`) and the try budgets;
 *    e. record      — `Recorder.record` (`mesh/observe/recorder.ts`) hooks an access-log
 *                     line onto the plan, or wraps it when the request is traced;
 * 3. fault    — `layer_route.ts` `faultDelay`: a delay a Route rule injects (an injected
 *               abort is the router's local answer);
 * 4. body     — `layer_request_body.ts`: a small body buffered so the request can be replayed;
 * 5. mirror   — `mirror.ts`: a fire-and-forget copy when a Route asks for one;
 * 6. balance  — `layer_balance.ts`: the endpoint of each try, never one already tried;
 * 7. try      — `layer_attempt.ts`: one try (connect, send, response head, per-try budget);
 * 8. retry    — `layer_retry.ts` with the one rule in `layer_retry_rule.ts`;
 * 9. relay    — `layer_relay.ts` (`layer_upgrade.ts` after 101): the response to the client;
 * 10. record  — `layer_record.ts`: the route hears once what the client got;
 * local answers (any layer's {@linkcode ProxyError}) go out through `layer_answer.ts`.
 *
 * The layers are plain functions called in this fixed order on the connection's
 * {@linkcode Session} and its reused {@linkcode Exchange}: no per-request closures, and the
 * usual request (no body) costs one async layer above its I/O, the try awaited here.
 * @module
 */
import {
  findHeadEnd,
  HttpParseError,
  isIdempotent,
  parseRequestHead,
  startsWithH2Preface,
} from "../http1/mod.ts";
import type { RequestHead } from "../http1/mod.ts";
import { turnNow } from "./batch_clock.ts";
import { mirrorRequest } from "./mirror.ts";
import { Done, type Exchange } from "./exchange.ts";
import type { Session } from "./session.ts";
import { noEndpointError, ProxyError } from "./types.ts";
import { answer, answerError } from "./layer_answer.ts";
import { faultDelay, route } from "./layer_route.ts";
import { bufferBody, bufferedBody, NO_BODY } from "./layer_request_body.ts";
import { pickEndpoint } from "./layer_balance.ts";
import { tryOnce } from "./layer_attempt.ts";
import { tryUntilAnswered } from "./layer_retry.ts";
import { record } from "./layer_record.ts";

/** Serves requests on the session's connection until it ends; closes it then. */
export async function serveConnection(s: Session): Promise<void> {
  const f = s.f, x = s.x;
  try {
    while (!s.closed) {
      // 1. read one head
      s.beginHead();
      let end = -1;
      try {
        while (true) {
          if (s.len > 0) {
            end = findHeadEnd(s.buf, s.len, s.scan, f.opts.limits.maxHeadBytes);
            if (end >= 0) break;
          }
          if (s.len === s.buf.length) s.grow(f.opts.limits.maxHeadBytes + 1024);
          if (f.draining && s.len === 0) break;
          const n = await s.read(s.buf.subarray(s.len));
          if (!n) break;
          if (s.len === 0) s.deadlineTick = f.tick + s.headTicks();
          s.len += n;
        }
      } catch (e) {
        if (!(e instanceof HttpParseError)) throw e;
        s.waitingHead = false;
        await _badRequest(s, e);
        break;
      } finally {
        s.waitingHead = false;
      }
      if (end < 0) break;
      let head: RequestHead;
      try {
        head = parseRequestHead(s.buf, s.scan.start, end, f.opts.limits);
      } catch (e) {
        if (!(e instanceof HttpParseError)) throw e;
        // h2c with prior knowledge reaches the parser as "HTTP/2.0": only here is it looked for.
        if (e.code === "bad_version" && _handOverH2(s)) break;
        await _badRequest(s, e);
        break;
      }
      f.stats.requests++;
      s.pos = end;
      x.begin(head);

      // 2. route (authorize and limit inside)
      const decision = route(s, head);
      const hasBody = head.chunked || head.contentLength > 0;
      let done: Done;
      if (decision instanceof ProxyError) {
        done = await answerError(s, decision, head, hasBody);
      } else {
        x.decision = decision;
        // 3. fault: the request waits before its first try is even planned
        if (decision.delayMs !== undefined) {
          await faultDelay(s, decision.delayMs);
          if (s.closed) {
            // Aborted (a drain's deadline, a client gone) while waiting: nothing was sent.
            record(x);
            break;
          }
        }
        if (hasBody) {
          done = await _serveWithBody(s, x);
        } else {
          // No body: replayable as is. The first try is awaited here (one async layer per
          // request); retries, if any, in tryUntilAnswered. record runs exactly once whatever
          // happens (a client reset too).
          // 5. mirror
          if (decision.mirror !== undefined) {
            mirrorRequest(f.upstreams, decision.mirror, head, NO_BODY);
          }
          try {
            x.started = turnNow();
            x.replayable = true;
            x.idempotent = isIdempotent(head.method);
            // 6. balance
            if (pickEndpoint(x) === null) {
              // As tryUntilAnswered would answer, without asking the balancer a second time.
              done = await answerError(s, noEndpointError(decision), head, false);
            } else {
              // 7. try (9. relay inside it); 8. retry when it failed
              const d = await tryOnce(s);
              done = d !== null ? d : await tryUntilAnswered(s);
            }
          } finally {
            // 10. record
            record(x);
          }
        }
      }
      x.end();
      if (done === Done.Close || f.draining) break;
    }
  } catch (e) {
    if (!s.closed) f.opts.logger.debug("client connection ended", { err: e as Error });
  } finally {
    s.abort();
  }
}

/**
 * The path of a routed request with a body: 4. buffer a small one so it can be replayed,
 * 5. mirror, 6-9. tries, 10. record (exactly once, a client reset mid-body included).
 */
async function _serveWithBody(s: Session, x: Exchange): Promise<Done> {
  try {
    const decision = x.decision!, head = x.head!;
    const buffered = bufferBody(s);
    if (!(buffered === true || (buffered !== false && await buffered))) return Done.Close;
    if (decision.mirror !== undefined) {
      mirrorRequest(s.f.upstreams, decision.mirror, head, bufferedBody(s));
    }
    x.idempotent = isIdempotent(head.method);
    x.started = turnNow();
    return await tryUntilAnswered(s);
  } finally {
    record(x);
  }
}

/**
 * Hands a connection that opened with the HTTP/2 preface to the listener's h2 server, with the
 * bytes read so far; false when the listener has none or the bytes are not the preface.
 */
function _handOverH2(s: Session): boolean {
  const h2 = s.f.opts.h2;
  if (h2 === null || !startsWithH2Preface(s.buf, 0, s.len)) return false;
  // Closed as far as this loop is concerned: the finally below must not close the socket.
  s.closed = true;
  h2({
    conn: s.conn,
    initial: s.buf.slice(0, s.len),
    listener: s.f.opts.listener,
    client: s.client,
    clientAddr: s.clientAddr,
    callerLine: s.callerLine,
  });
  return true;
}

/** Answers a request whose head could not be read, and closes. */
async function _badRequest(s: Session, e: HttpParseError): Promise<void> {
  await answer(s, {
    status: e.status,
    code: "bad_request",
    message: e.message,
    close: true,
    headOnly: false,
  });
}
