/**
 * The key of an upstream listener, in a module of its own so the data-plane workers can use it
 * without loading the config schemas (and zod with them).
 * @module
 */

/** An upstream's key: its service, or `service@caller` when it calls as a named local service. */
export function upstreamKey(u: { service: string; caller?: string }): string {
  return u.caller === undefined ? u.service : `${u.service}@${u.caller}`;
}
