/**
 * The route layer: the router turns a request head into a plan ({@linkcode RouteDecision}) or
 * a local answer ({@linkcode ProxyError}). Inside that one call the router also authorizes the
 * caller (inbound: `mesh/authz/inbound.ts`), applies rate limits
 * (`mesh/proxy/inbound_rate_limit.ts`) and the circuit breaker's in-flight limit, matches
 * Route rules and rolls their faults (`mesh/proxy/destination.ts`).
 * @module
 */
import type { RequestHead } from "../http1/mod.ts";
import type { Session } from "./session.ts";
import type { ProxyError, RouteDecision } from "./types.ts";

/** Routes `head` as it arrived on the session's listener from its client. */
export function route(s: Session, head: RequestHead): RouteDecision | ProxyError {
  return s.f.opts.router.route(head, s.f.opts.listener, s.client);
}

/** Waits `ms` for an injected fault delay, or less if the session is aborted meanwhile. */
export async function faultDelay(s: Session, ms: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    s.endDelay = () => {
      clearTimeout(t);
      resolve();
    };
  });
  s.endDelay = null;
}
