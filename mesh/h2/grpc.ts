/**
 * gRPC over HTTP/2 as the proxy sees it (no I/O): which requests are gRPC, the `grpc-timeout`
 * deadline, the status codes the proxy answers with when it generates an error, and the HTTP
 * status a gRPC status counts as in metrics, traces and outlier detection.
 * @module
 */
import type { ProxyError } from "../forward/mod.ts";

/** gRPC status codes the proxy names (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** Longest `grpc-timeout` honoured, in ms (a longer one is cut to this). */
export const MAX_GRPC_TIMEOUT_MS = 24 * 3600_000;

/** Whether a request or response with this `content-type` is gRPC. */
export function isGrpc(contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== "string") return false;
  // "application/grpc", "application/grpc+proto", "application/grpc;charset=..."
  return /^application\/grpc(?:[+;]|$)/i.test(contentType);
}

const _UNIT_MS: Record<string, number> = {
  H: 3600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/**
 * The deadline a `grpc-timeout` value asks for, in ms (at least 1), or null when absent or
 * malformed (the gRPC spec: 1 to 8 ASCII digits and one unit of H, M, S, m, u, n).
 */
export function parseGrpcTimeout(v: string | string[] | undefined): number | null {
  if (typeof v !== "string") return null;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (m === null) return null;
  const ms = Number(m[1]) * _UNIT_MS[m[2]!]!;
  return Math.min(MAX_GRPC_TIMEOUT_MS, Math.max(1, Math.ceil(ms)));
}

/**
 * A `grpc-timeout` value for `ms` milliseconds (whole milliseconds, at most 8 digits), rounded
 * down: a proxy passing on the time left must never lengthen the caller's deadline (rounding
 * up at each hop let the app's deadline end after the client's).
 */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(1, Math.floor(ms));
  return whole < 1e8 ? `${whole}m` : `${Math.floor(whole / 1000)}S`;
}

/** The gRPC status of an error the proxy generates itself, by its cause. */
export function grpcStatusOfError(e: ProxyError): number {
  switch (e.code) {
    case "denied":
    case "egress_denied":
      return GrpcStatus.PERMISSION_DENIED;
    case "rate_limited":
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case "no_route":
      return GrpcStatus.UNIMPLEMENTED;
    case "upstream_timeout":
      return GrpcStatus.DEADLINE_EXCEEDED;
    case "no_endpoint":
    case "no_capable_endpoint":
    case "overloaded":
    case "upstream_connect_failure":
    case "upstream_reset":
      return GrpcStatus.UNAVAILABLE;
    case "bad_request":
    case "bad_upstream_response":
      return GrpcStatus.INTERNAL;
    case "fault_abort":
    case "https_redirect":
      return grpcStatusOfHttp(e.status);
  }
}

/** The gRPC status for an HTTP status (gRPC's "HTTP to gRPC status code mapping"). */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return status >= 200 && status < 300 ? GrpcStatus.OK : GrpcStatus.UNKNOWN;
  }
}

const _HTTP_OF_GRPC = [
  200,
  499,
  500,
  400,
  504,
  404,
  409,
  403,
  429,
  400,
  409,
  400,
  501,
  500,
  503,
  500,
  401,
];

/**
 * The HTTP status a finished gRPC call counts as in metrics, traces and outlier detection
 * (Google's API mapping: OK 200, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, INTERNAL 500, ...), so
 * that `grpc-status`, not the 200 every gRPC response carries, decides success. A missing or
 * unknown status counts as 500 (UNKNOWN).
 */
export function httpStatusOfGrpc(code: number | null): number {
  if (code === null || !Number.isInteger(code) || code < 0) return 500;
  return _HTTP_OF_GRPC[code] ?? 500;
}

/** The `grpc-status` in a header or trailer block, or null when absent or not a number. */
export function grpcStatusIn(h: Record<string, unknown> | undefined): number | null {
  const v = h?.["grpc-status"];
  if (typeof v !== "string" || !/^\d{1,3}$/.test(v)) return null;
  return Number(v);
}

/** Percent-encodes a `grpc-message` (gRPC: printable ASCII but `%` as is, the rest as %XX). */
export function encodeGrpcMessage(msg: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(msg)) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25
      ? String.fromCharCode(b)
      : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}
