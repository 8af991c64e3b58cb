import { assertEquals } from "../../tests/assert.ts";
import { ProxyError } from "../forward/mod.ts";
import {
  encodeGrpcMessage,
  formatGrpcTimeout,
  GrpcStatus,
  grpcStatusIn,
  grpcStatusOfError,
  httpStatusOfGrpc,
  isGrpc,
  parseGrpcTimeout,
} from "./grpc.ts";

Deno.test("isGrpc() knows gRPC content types and nothing else", () => {
  for (const t of ["application/grpc", "application/grpc+proto", "application/grpc;x=1"]) {
    assertEquals(isGrpc(t), true, t);
  }
  for (const t of [undefined, "application/grpc-web", "application/json", "text/grpc"]) {
    assertEquals(isGrpc(t), false, String(t));
  }
});

Deno.test("parseGrpcTimeout() reads every unit and refuses malformed values", () => {
  const cases: [string, number | null][] = [
    ["1H", 3600_000],
    ["2M", 120_000],
    ["3S", 3000],
    ["300m", 300],
    ["1500u", 2],
    ["5n", 1],
    ["99999999m", 24 * 3600_000],
    ["", null],
    ["10", null],
    ["123456789m", null],
    ["-5m", null],
    ["5 m", null],
    ["5x", null],
  ];
  for (const [v, want] of cases) assertEquals(parseGrpcTimeout(v), want, v);
  assertEquals(parseGrpcTimeout(undefined), null);
});

Deno.test("formatGrpcTimeout() writes what parseGrpcTimeout() reads back", () => {
  for (const ms of [1, 250, 86_000_000]) assertEquals(parseGrpcTimeout(formatGrpcTimeout(ms)), ms);
  assertEquals(formatGrpcTimeout(0.2), "1m");
  // The time left is passed on rounded down, never as more than is left.
  assertEquals(formatGrpcTimeout(299.6), "299m");
  assertEquals(formatGrpcTimeout(100_000_999.9), "100000S");
});

Deno.test("errors the proxy makes map to the gRPC status a client can act on", () => {
  const cases: [ProxyError, number][] = [
    [new ProxyError(403, "denied", "x"), GrpcStatus.PERMISSION_DENIED],
    [new ProxyError(429, "rate_limited", "x"), GrpcStatus.RESOURCE_EXHAUSTED],
    [new ProxyError(503, "no_endpoint", "x"), GrpcStatus.UNAVAILABLE],
    [new ProxyError(503, "overloaded", "x"), GrpcStatus.UNAVAILABLE],
    [new ProxyError(502, "upstream_connect_failure", "x"), GrpcStatus.UNAVAILABLE],
    [new ProxyError(504, "upstream_timeout", "x"), GrpcStatus.DEADLINE_EXCEEDED],
    [new ProxyError(404, "no_route", "x"), GrpcStatus.UNIMPLEMENTED],
    [new ProxyError(400, "bad_request", "x"), GrpcStatus.INTERNAL],
    [new ProxyError(503, "fault_abort", "x"), GrpcStatus.UNAVAILABLE],
    [new ProxyError(500, "fault_abort", "x"), GrpcStatus.UNKNOWN],
  ];
  for (const [e, want] of cases) assertEquals(grpcStatusOfError(e), want, `${e.code} ${e.status}`);
});

Deno.test("httpStatusOfGrpc() counts OK as 200 and failures as the HTTP status they stand for", () => {
  assertEquals(httpStatusOfGrpc(0), 200);
  assertEquals(httpStatusOfGrpc(GrpcStatus.UNAVAILABLE), 503);
  assertEquals(httpStatusOfGrpc(GrpcStatus.DEADLINE_EXCEEDED), 504);
  assertEquals(httpStatusOfGrpc(GrpcStatus.INTERNAL), 500);
  assertEquals(httpStatusOfGrpc(GrpcStatus.PERMISSION_DENIED), 403);
  assertEquals(httpStatusOfGrpc(null), 500, "a call that ended without a status failed");
  assertEquals(httpStatusOfGrpc(99), 500);
  assertEquals(grpcStatusIn({ "grpc-status": "14" }), 14);
  assertEquals(grpcStatusIn({ "grpc-status": "x" }), null);
  assertEquals(grpcStatusIn({}), null);
});

Deno.test("encodeGrpcMessage() percent-encodes all but printable ASCII", () => {
  assertEquals(encodeGrpcMessage("no endpoint: 100%"), "no endpoint: 100%25");
  assertEquals(encodeGrpcMessage("é\n"), "%C3%A9%0A");
});
