import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { DEFAULT_HEAD_LIMITS, HttpParseError } from "../http1/mod.ts";
import {
  forwardedHeaders,
  H2RequestError,
  headersOfLines,
  relayedHeaders,
  requestHeadOf,
  wantsTrailers,
} from "./headers.ts";

const L = DEFAULT_HEAD_LIMITS;

Deno.test("requestHeadOf() gives routing the same head an HTTP/1.1 request would", () => {
  const head = requestHeadOf({
    ":method": "POST",
    ":path": "/test.Echo/Unary?x=1",
    ":scheme": "http",
    ":authority": "ledger:8080",
    "content-type": "application/grpc",
    "x-canary": "1",
    cookie: ["a=1", "b=2"],
  }, L);
  assertEquals(head.method, "POST");
  assertEquals(head.target, "/test.Echo/Unary?x=1");
  assertEquals(head.host, "ledger:8080");
  assertEquals(head.names.filter((n) => n === "cookie").length, 2);
  assertEquals(head.values[head.names.indexOf("x-canary")], "1");
});

Deno.test("requestHeadOf() refuses CONNECT, a missing path and what the HTTP/1 parser refuses", () => {
  assertThrows(
    () => requestHeadOf({ ":method": "CONNECT", ":authority": "a:1" }, L),
    H2RequestError,
  );
  assertThrows(() => requestHeadOf({ ":method": "GET", ":authority": "a" }, L), H2RequestError);
  assertThrows(
    () => requestHeadOf({ ":method": "GET", ":path": "/", ":authority": "a", "bad name": "x" }, L),
    HttpParseError,
  );
  const big = { ":method": "GET", ":path": "/", ":authority": "a", "x-big": "y".repeat(70_000) };
  assertThrows(() => requestHeadOf(big, L), HttpParseError);
});

Deno.test("forwardedHeaders() drops forged identity and hop-by-hop fields, keeps te: trailers", () => {
  const h2 = {
    ":method": "POST",
    ":path": "/p",
    ":authority": "ledger",
    te: "trailers",
    "x-skein-caller": "spiffe://evil/svc/admin",
    "x-forwarded-for": "10.0.0.9",
    "x-keep": "yes",
  };
  const out = forwardedHeaders(requestHeadOf(h2, L), {
    clientAddr: "127.0.0.1",
    extra: "x-skein-destination: ledger\r\n",
    callerLine: "x-skein-caller: spiffe://td/svc/web\r\n",
    teTrailers: wantsTrailers(h2),
    limits: L,
  });
  assertEquals(out[":method"], "POST");
  assertEquals(out[":path"], "/p");
  assertEquals(out[":authority"], "ledger");
  assertEquals(out["te"], "trailers");
  assertEquals(out["x-skein-caller"], "spiffe://td/svc/web");
  assertEquals(out["x-forwarded-for"], "10.0.0.9, 127.0.0.1");
  assertEquals(out["x-skein-destination"], "ledger");
  assertEquals(out["x-keep"], "yes");
  assert(!("host" in out));
});

Deno.test("relayedHeaders() and headersOfLines() leave out what HTTP/2 forbids", () => {
  assertEquals(
    relayedHeaders({ ":status": "200", connection: "close", "x-a": "1" }, true),
    { ":status": "200", "x-a": "1" },
  );
  assertEquals(relayedHeaders({ ":status": "200", "grpc-status": "0" }, false), {
    "grpc-status": "0",
  });
  assertEquals(headersOfLines("retry-after: 1\r\nconnection: close\r\nx-skein-denied: p\r\n"), {
    "retry-after": "1",
    "x-skein-denied": "p",
  });
  assertEquals(wantsTrailers({ te: "gzip, trailers" }), true);
  assertEquals(wantsTrailers({ te: "gzip" }), false);
});

Deno.test("forwardedHeaders() builds the same block directly as through the HTTP/1 writer", () => {
  const blocks = [
    { ":method": "GET", ":path": "/", ":authority": "a" },
    {
      ":method": "POST",
      ":path": "/test.Echo/Unary?x=1",
      ":authority": "ledger:8080",
      "content-type": "application/grpc",
      cookie: ["a=1", "b=2"],
      "x-v": "  spaced  ",
    },
  ];
  const extras = [undefined, "", "x-skein-destination: ledger\r\nX-Two: 2\r\n"];
  for (const h2 of blocks) {
    for (const extra of extras) {
      for (const callerLine of [undefined, null, "x-skein-caller: spiffe://td/svc/web\r\n"]) {
        const opts = { clientAddr: "10.0.0.1", extra, callerLine, teTrailers: true, limits: L };
        const direct = requestHeadOf(h2, L);
        const written = requestHeadOf(h2, L);
        // Rebuilding the start line from `target` sends the head through the writer.
        written.targetRewritten = true;
        assertEquals(forwardedHeaders(direct, opts), forwardedHeaders(written, opts));
        assertEquals(
          forwardedHeaders(direct, { ...opts, clientAddr: null }),
          forwardedHeaders(written, { ...opts, clientAddr: null }),
        );
      }
    }
  }
});
