/**
 * The one rule of whether a failed try may be sent again, as far as the request itself goes
 * (pure). The destination's retry policy (`mesh/resilience/retry.ts`: `on` conditions,
 * attempts, budget, backoff) is asked only for a try this rule lets through.
 *
 * A try may be sent again only when nothing reached the client yet and the request can be
 * repeated whole: its body is buffered (none, or within `maxRetryBodyBytes`), and either it
 * never reached the upstream (a refused connect, a mux stream refused unread) or its method is
 * idempotent. A response the upstream gave (a 5xx) is retried only for an idempotent request
 * whose body is not still streaming. Nothing is retried once the forwarder drains, nor after
 * the overall timeout ran out.
 * @module
 */
import type { Outcome } from "./types.ts";

/** What is known about a failed try when deciding whether to retry it. */
export interface TryFacts {
  /** How the try ended. */
  readonly outcome: Outcome;
  /** The request body is whole in the client buffer (none, or buffered). */
  readonly replayable: boolean;
  /** The method may be repeated with the same effect. */
  readonly idempotent: boolean;
  /** The request may have reached the upstream. */
  readonly sentUpstream: boolean;
  /** Part of the request body is still being read from the client and sent on. */
  readonly bodyStreaming: boolean;
  /** The forwarder is draining. */
  readonly draining: boolean;
  /** The route's overall timeout has run out. */
  readonly overallSpent: boolean;
}

/** Whether the failed try described by `t` may be retried (if the retry policy agrees). */
export function mayRetry(t: TryFacts): boolean {
  if (t.draining) return false;
  const o = t.outcome;
  if (o.kind === "response") {
    // The response head is held back, so a 5xx can still be replaced by another try's answer.
    return o.status >= 500 && t.replayable && t.idempotent && !t.bodyStreaming;
  }
  if (t.overallSpent) return false;
  // A refused connect consumed nothing from the client, so any request may go elsewhere.
  return o.kind === "connect_failure" || (t.replayable && (t.idempotent || !t.sentUpstream));
}
