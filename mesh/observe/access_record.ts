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

/** The fields of a line known when the request starts. */
export type AccessBase = Omit<
  AccessRecord,
  "duration_ms" | "status" | "bytes_out" | "endpoint" | "retries" | "error"
>;

/** The fields of a line known when the exchange ends. */
export type AccessEnd = Pick<
  AccessRecord,
  "duration_ms" | "status" | "bytes_out" | "endpoint" | "retries" | "error"
>;

/**
 * The JSON line (no newline) for a request: written field by field, since this runs once per
 * request on both proxies and an object spread plus `JSON.stringify` of the whole record cost
 * several times more.
 */
export function accessLine(b: AccessBase, e: AccessEnd): string {
  return `{"type":"${b.type}","node":${_str(b.node)},"side":"${b.side}","start":"${
    _iso(b.start)
  }","method":${_str(b.method)},"path":${_str(b.path)},"authority":${
    _str(b.authority)
  },"bytes_in":${_num(b.bytes_in)},"caller":${_str(b.caller)},"destination":${
    _str(b.destination)
  },"trace_id":${_str(b.trace_id)},"request_id":${_str(b.request_id)},"duration_ms":${
    _num(e.duration_ms)
  },"status":${_num(e.status)},"bytes_out":${_num(e.bytes_out)},"endpoint":${
    _str(e.endpoint)
  },"retries":${_num(e.retries)},"error":${_str(e.error)}}`;
}

/** Printable ASCII without `"` or `\\`: needs no escaping in a JSON string. */
const _PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** `s` as a JSON value. */
function _str(s: string | null): string {
  if (s === null) return "null";
  return _PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

/** `n` as a JSON value (JSON has no NaN or Infinity). */
function _num(n: number | null): string {
  return n === null || !Number.isFinite(n) ? "null" : String(n);
}

/** The second last formatted, and its ISO 8601 text up to the milliseconds. */
let _isoSecond = Number.NaN;
let _isoPrefix = "";

/** Epoch ms as ISO 8601 (as `Date.toISOString`), formatting the date part once per second. */
function _iso(ms: number): string {
  const t = Math.floor(ms);
  const sec = Math.floor(t / 1000);
  if (sec !== _isoSecond) {
    _isoSecond = sec;
    _isoPrefix = new Date(sec * 1000).toISOString().slice(0, 20);
  }
  const m = t - sec * 1000;
  return _isoPrefix + (m < 10 ? "00" : m < 100 ? "0" : "") + m + "Z";
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
