/**
 * What became of one try, as the forwarder reports it to retry and outlier detection.
 * @module
 */

/** The result of one try against one endpoint. */
export type Outcome =
  | { readonly kind: "response"; readonly status: number }
  | { readonly kind: "connect_failure" }
  | { readonly kind: "reset" }
  | { readonly kind: "timeout" };

/** Shared outcome objects for the kinds without a payload, so reporting them allocates nothing. */
export const CONNECT_FAILURE: Outcome = Object.freeze({ kind: "connect_failure" });
/** The connection was reset (or closed) before a complete response head arrived. */
export const RESET: Outcome = Object.freeze({ kind: "reset" });
/** The per-try timeout fired. */
export const TIMEOUT: Outcome = Object.freeze({ kind: "timeout" });

/** Whether an outcome counts as a failure of the endpoint (for balancers and outlier detection). */
export function isFailure(o: Outcome): boolean {
  return o.kind !== "response" || o.status >= 500;
}
