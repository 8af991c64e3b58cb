/**
 * Fault injection of a Route rule (`fault.delay`, `fault.abort`): decided at the calling
 * proxy before any endpoint is picked, and only for requests the rule's match selected.
 * Pure logic; the destination counts what it injects and the forwarder waits out a delay.
 * @module
 */
import type { Route } from "./destination_types.ts";
import { MAX_FAULT_DELAY_MS } from "../../config/resource_limits.ts";

export { MAX_FAULT_DELAY_MS };

/** The fault a rule injects into the requests it selects. */
export interface RuleFault {
  /** Percent of selected requests delayed. */
  readonly delayPercent: number;
  /** The delay in ms. */
  readonly delayMs: number;
  /** Percent of selected requests answered at once with `abortStatus`. */
  readonly abortPercent: number;
  /** Status of an injected abort. */
  readonly abortStatus: number;
}

/** What to do to one request: nothing, delay it, or answer it at once. */
export type FaultAction =
  | { readonly kind: "none" }
  | { readonly kind: "delay"; readonly ms: number }
  | { readonly kind: "abort"; readonly status: number };

const _NONE: FaultAction = Object.freeze({ kind: "none" });

/** Compiles a rule's `fault` section; null when it has none. */
export function compileFault(f: Route["rules"][number]["fault"]): RuleFault | null {
  if (f === undefined || (f.delay === undefined && f.abort === undefined)) return null;
  return {
    delayPercent: f.delay?.percent ?? 0,
    // A resource stored before the cap existed waits the cap, not its own figure.
    delayMs: Math.min(f.delay?.fixed ?? 0, MAX_FAULT_DELAY_MS),
    abortPercent: f.abort?.percent ?? 0,
    abortStatus: f.abort?.status ?? 503,
  };
}

/** Whether an event of `percent` % happens this time. */
export function rolls(percent: number, random: () => number): boolean {
  return percent >= 100 || (percent > 0 && random() * 100 < percent);
}

/**
 * Decides the fault for one selected request. An abort wins over a delay (the request would
 * not be sent anyway); each is rolled independently, as Envoy does.
 */
export function decideFault(f: RuleFault, random: () => number): FaultAction {
  if (rolls(f.abortPercent, random)) return { kind: "abort", status: f.abortStatus };
  if (f.delayMs > 0 && rolls(f.delayPercent, random)) return { kind: "delay", ms: f.delayMs };
  return _NONE;
}
