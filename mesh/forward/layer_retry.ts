/**
 * The retry layer: tries until the client has its answer. After a failed try it asks the one
 * rule ({@linkcode mayRetry}) whether the try may be sent again, then the route's retry policy
 * (conditions, attempts, budget, backoff); a retry goes to an endpoint not tried yet. When no
 * try is left, the last failure becomes the client's answer.
 * @module
 */
import { turnNow } from "./batch_clock.ts";
import { MAX_ATTEMPTS } from "./context.ts";
import type { Done } from "./exchange.ts";
import type { Session } from "./session.ts";
import {
  type Endpoint,
  noEndpointError,
  type Outcome,
  outcomeToProxyError,
  ProxyError,
} from "./types.ts";
import { answerError } from "./layer_answer.ts";
import { tryOnce } from "./layer_attempt.ts";
import { excludeTried, pickEndpoint } from "./layer_balance.ts";
import { mayRetry } from "./layer_retry_rule.ts";

/**
 * Runs tries until the client has its answer. The exchange may hold a first try that failed
 * already (`x.outcome` set: the bodiless path makes its first try itself). A buffered body is
 * consumed from the client buffer once the exchange is over.
 */
export async function tryUntilAnswered(s: Session): Promise<Done> {
  const f = s.f, x = s.x, head = x.head!, decision = x.decision!;
  const cl = head.contentLength;
  let lastOutcome: Outcome | null = null;
  let lastEp: Endpoint | null = null;
  let tried = x.outcome !== null;
  for (; x.attempt < MAX_ATTEMPTS; x.attempt++) {
    if (!tried) {
      if (pickEndpoint(x) === null) break;
      const done = await tryOnce(s);
      if (done !== null) {
        if (x.replayable && cl > 0) s.pos += cl;
        return done;
      }
    }
    tried = false;
    const outcome = x.outcome!;
    lastOutcome = outcome;
    lastEp = x.ep;
    if (x.bodyError !== null) {
      return await answerError(
        s,
        new ProxyError(x.bodyError.status, "bad_request", x.bodyError.message),
        head,
        true,
      );
    }
    const backoff = x.backoff >= 0 ? x.backoff : mayRetry({
        outcome,
        replayable: x.replayable,
        idempotent: x.idempotent,
        sentUpstream: x.sentUpstream,
        bodyStreaming: false,
        draining: f.draining,
        overallSpent: decision.timeoutMs > 0 && turnNow() - x.started >= decision.timeoutMs,
      })
      ? decision.retry(x.attempt, outcome)
      : null;
    if (backoff === null) break;
    f.stats.retries++;
    excludeTried(x, x.ep!);
    if (backoff > 0) await new Promise((r) => setTimeout(r, backoff));
  }
  if (x.replayable && cl > 0) s.pos += cl;
  const err = lastOutcome === null
    ? noEndpointError(decision)
    : outcomeToProxyError(decision.cluster, lastEp, lastOutcome);
  return await answerError(s, err, head, !x.replayable);
}
