/**
 * Turning a mesh call down unread. When the callee's proxy knows its application never saw a
 * request (the app refused the connect, the inbound is at its limits or has no local endpoint),
 * it refuses the caller's skein-mux/1 stream instead of answering 502/503. A refusal is a
 * frame of the mux protocol between two proxies, so no application can forge one, and the
 * calling proxy treats it like a refused connect: safe to retry elsewhere whatever the method.
 * @module
 */
import { isRefusable } from "../conn/refusable.ts";
import type { ProxyErrorCause } from "./types.ts";

/** Local answers that mean the request reached no application. */
const _UNREACHED: ReadonlySet<ProxyErrorCause> = new Set([
  "upstream_connect_failure",
  "overloaded",
  "no_endpoint",
]);

/** Whether a local answer with `cause` says the request reached no application. */
export function reachedNoApp(cause: ProxyErrorCause): boolean {
  return _UNREACHED.has(cause);
}

/**
 * Refuses `conn` unread when it is a mux stream from a calling proxy; false (and nothing done)
 * for any other connection, which must get the proxy's ordinary answer.
 */
export function refuseUnread(conn: Deno.Conn): boolean {
  if (!isRefusable(conn)) return false;
  conn.refuse();
  return true;
}
