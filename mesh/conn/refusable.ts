/**
 * The one thing the forwarder needs to know about a connection that arrived as a mux stream:
 * that it can be turned down unread and carries its caller's verified identity. Declared here,
 * below `mesh/forward/` and `mesh/mux/`, so the forwarder recognises a stream without
 * importing the mux that implements it.
 * @module
 */

/** A connection a calling proxy opened on a mux session: it can be refused before it is read. */
export interface RefusableConn extends Deno.Conn {
  /** The caller's verified SPIFFE id, when the session's handshake presented one. */
  readonly peerIdentity: string | null;
  /**
   * Turns the connection down unread: the caller's proxy sees a refusal, safe to retry
   * elsewhere whatever the method.
   */
  refuse(): void;
}

/** Whether `conn` can be refused unread (it is a mux stream, the only kind with `refuse`). */
export function isRefusable(conn: Deno.Conn): conn is RefusableConn {
  return typeof (conn as Partial<RefusableConn>).refuse === "function";
}
