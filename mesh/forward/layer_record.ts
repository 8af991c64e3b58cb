/**
 * The record layer: once the exchange is over (the response body passed to the client, or
 * the exchange failed), the route's decision is told exactly once what the client got, so
 * breakers, latency metrics and access logs cover the whole exchange.
 * @module
 */
import type { Exchange } from "./exchange.ts";

/** Tells the decision the status the client got (0 = none) and the body bytes relayed. */
export function record(x: Exchange): void {
  x.decision!.onDone?.(x.sentStatus, x.bodyOut);
}
