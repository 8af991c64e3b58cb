/**
 * What an HTTP/2 connection is told when it is made.
 * @module
 */
import type { HeaderRecord } from "./fields.ts";
import type { H2Stream } from "./stream.ts";

/** Options of an `H2Connection`. */
export interface H2ConnectionOptions {
  /** Server (streams come from the peer) or client (`request` opens them). */
  role: "server" | "client";
  /** Most streams the peer may have open at once (advertised). */
  maxConcurrentStreams: number;
  /** Largest header list accepted, RFC 7541 sizes (advertised). */
  maxHeaderListBytes: number;
  /** Server role: a new request; `endStream` when its headers ended it. */
  onStream?: (s: H2Stream, headers: HeaderRecord, endStream: boolean) => void;
  /** Millisecond clock. @default performance.now */
  now?: () => number;
}
