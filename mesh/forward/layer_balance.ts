/**
 * The balance layer: the endpoint of each try, from the route's balancer, never one already
 * tried for this request while others are left (the balancer behind the decision chooses;
 * this layer keeps the exchange's record of what was tried).
 * @module
 */
import { type Exchange, NO_EXCLUSION } from "./exchange.ts";
import type { Endpoint } from "./types.ts";

/** Picks the endpoint of the exchange's current try (null: none left); records it as `x.ep`. */
export function pickEndpoint(x: Exchange): Endpoint | null {
  const ep = x.decision!.pick(x.attempt, x.exclude ?? NO_EXCLUSION);
  x.ep = ep;
  return ep;
}

/** Marks the current try's endpoint as tried, so the next pick avoids it. */
export function excludeTried(x: Exchange, ep: Endpoint): void {
  (x.exclude ??= new Set()).add(ep.key);
}
