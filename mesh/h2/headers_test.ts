import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  ByteWriter,
  DEFAULT_HEAD_LIMITS,
  HttpParseError,
  parseRequestHead,
  type RequestHead,
  writeForwardedRequestHead,
} from "../http1/mod.ts";
import {
  forwardedHeaders,
  type H2Headers,
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

Deno.test("requestHeadOf()'s field strings are what the parser decodes from the head's bytes", () => {
  const blocks: H2Headers[] = [
    { ":method": "GET", ":path": "/", ":authority": "a:1", "user-agent": "h2load" },
    { ":method": "GET", ":path": "/", ":authority": "a", "x-pad": " v\t", "x-b": "1" },
    { ":method": "GET", ":path": "/", host: "h", "x-list": ["1", "2"], cookie: "c=1; d=2" },
  ];
  for (const h of blocks) {
    const head = requestHeadOf(h, L);
    const raw = head as unknown as { raw: Uint8Array; start: number; end: number };
    const again = parseRequestHead(raw.raw, raw.start, raw.end, L);
    assertEquals(head.names, again.names);
    assertEquals(head.values, again.values);
  }
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

/** The block as the HTTP/1 forwarder writes the head, parsed back: what h2 must send too. */
function viaHttp1Writer(
  head: RequestHead,
  opts: {
    clientAddr: string | null;
    extra?: string;
    callerLine?: string | null;
    teTrailers: boolean;
  },
): H2Headers {
  const w = new ByteWriter(4096, 1 << 20);
  writeForwardedRequestHead(w, head, opts.clientAddr, opts.extra, opts.callerLine);
  const fwd = parseRequestHead(w.buf.slice(0, w.len), 0, w.len, {
    ...L,
    maxHeadBytes: w.len + 1,
    maxHeaderCount: L.maxHeaderCount + 16,
  });
  const out: H2Headers = { ":method": fwd.method, ":scheme": "http", ":path": fwd.target };
  if (fwd.host !== null) out[":authority"] = fwd.host;
  const drop = ["host", "te", "connection", "keep-alive", "proxy-connection", "transfer-encoding"];
  for (let i = 0; i < fwd.names.length; i++) {
    const name = fwd.names[i]!;
    if (drop.includes(name) || name === "upgrade" || name === "http2-settings") continue;
    const prev = out[name];
    const v = fwd.values[i]!;
    out[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  if (opts.teTrailers) out["te"] = "trailers";
  return out;
}

Deno.test("forwardedHeaders() sends what the HTTP/1 forwarder's head would carry", () => {
  const blocks: H2Headers[] = [
    { ":method": "GET", ":path": "/", ":authority": "a" },
    {
      ":method": "POST",
      ":path": "/test.Echo/Unary?x=1",
      ":authority": "ledger:8080",
      "content-type": "application/grpc",
      te: "trailers",
      cookie: ["a=1", "b=2"],
      "x-v": "  spaced  ",
    },
    {
      ":method": "PUT",
      ":path": "/p",
      ":authority": "ledger",
      "x-forwarded-for": ["10.0.0.9", "10.0.0.8, 10.0.0.7"],
      "x-skein-caller": "spiffe://evil/svc/admin",
      "x-http-method-override": "DELETE",
      "content-length": ["5", "5"],
      "x-keep": "yes",
    },
    { ":method": "GET", ":path": "/", ":authority": "a", "x-forwarded-for": "" },
  ];
  const extras = [undefined, "", "x-skein-destination: ledger\r\nX-Two: 2\r\n"];
  for (const h2 of blocks) {
    for (const extra of extras) {
      for (const callerLine of [undefined, null, "x-skein-caller: spiffe://td/svc/web\r\n"]) {
        for (const clientAddr of ["10.0.0.1", null]) {
          const opts = { clientAddr, extra, callerLine, teTrailers: wantsTrailers(h2) };
          const what = JSON.stringify({ h2, opts });
          assertEquals(
            forwardedHeaders(requestHeadOf(h2, L), opts),
            viaHttp1Writer(requestHeadOf(h2, L), opts),
            what,
          );
        }
      }
    }
  }
});
