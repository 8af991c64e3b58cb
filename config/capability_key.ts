/**
 * How an ask for capabilities is named where services are named (upstream keys, destination
 * names). No zod here: the data-plane workers import it.
 * @module
 */

/** Prefix of the key of an upstream or destination that asks for capabilities. */
export const CAPABILITY_KEY_PREFIX = "cap:";

/**
 * The key standing for "any instance declaring all of `caps`": `cap:` and the sorted names
 * joined by commas. Never a service name (those have no `:`).
 */
export function capabilityKey(caps: readonly string[]): string {
  return CAPABILITY_KEY_PREFIX + [...new Set(caps)].sort().join(",");
}
