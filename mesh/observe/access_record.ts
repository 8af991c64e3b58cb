/**
 * One access-log line: its fields and their JSON form, and the `x-skein-error` cause of a
 * failed exchange as the forwarder would have named it.
 * @module
 */
import type { Outcome } from "../forward/types.ts";

/** The fields of one request's access-log line (`start` in epoch ms; written as ISO 8601). */
export interface AccessRecord {
  type: "http";
  node: string;
  /** `client` (the caller's proxy, outbound) or `server` (the callee's proxy, inbound). */
  side: "client" | "server";
  start: number;
  duration_ms: number;
  method: string;
  path: string;
  authority: string | null;
  status: number;
  /** Request body bytes (the declared length; null when chunked). */
  bytes_in: number | null;
  /** Response body bytes relayed to the client. */
  bytes_out: number;
  /** Client side: the local service calling; server side: the caller's verified SPIFFE id. */
  caller: string | null;
  destination: string;
  endpoint: string | null;
  retries: number;
  /** The `x-skein-error` cause when the proxy answered itself, else null. */
  error: string | null;
  trace_id: string | null;
  request_id: string | null;
}

/** The JSON line (no newline) for `r`. */
export function accessLine(r: AccessRecord): string {
  return JSON.stringify({ ...r, start: new Date(r.start).toISOString() });
}

/**
 * The cause the forwarder sent as `x-skein-error` for an exchange that ended with `status`
 * after `attempts` attempts, the last one ending in `last`; null when the upstream answered.
 */
export function causeOf(status: number, attempts: number, last: Outcome | null): string | null {
  if (last === null) return attempts === 0 && status === 503 ? "no_endpoint" : null;
  switch (last.kind) {
    case "response":
      return null;
    case "connect_failure":
      return "upstream_connect_failure";
    case "reset":
      return status === 0 ? "client_gone" : "upstream_reset";
    case "timeout":
      return "upstream_timeout";
  }
}
