import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  ByteWriter,
  markHopByHop,
  proxyResponseBytes,
  requestHeadParser,
  responseBodyKind,
  responseHeadParser,
  writeForwardedRequestHead,
  writeForwardedResponseHead,
} from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function fwdReq(s: string, client: string | null): string {
  const r = requestHeadParser().push(enc.encode(s));
  assert(r);
  const w = new ByteWriter(16);
  writeForwardedRequestHead(w, r.head, client);
  return dec.decode(w.view());
}

function fwdRes(s: string, close: boolean): string {
  const r = responseHeadParser().push(enc.encode(s));
  assert(r);
  const w = new ByteWriter(16);
  writeForwardedResponseHead(w, r.head, close);
  return dec.decode(w.view());
}

Deno.test("writeForwardedRequestHead() drops hop-by-hop fields and appends x-forwarded-for", () => {
  const cases: Array<[string, string | null, string]> = [
    [
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "10.0.0.1",
      "GET / HTTP/1.1\r\nHost: a\r\nx-forwarded-for: 10.0.0.1\r\n\r\n",
    ],
    [
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
      "2.2.2.2",
      "GET / HTTP/1.1\r\nHost: a\r\nx-forwarded-for: 1.1.1.1, 2.2.2.2\r\n\r\n",
    ],
    [
      "GET / HTTP/1.1\r\nConnection: keep-alive, X-Secret\r\nHost: a\r\nX-Secret: s\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: x\r\nProxy-Connection: k\r\nX-Keep: 1\r\n\r\n",
      null,
      "GET / HTTP/1.1\r\nHost: a\r\nX-Keep: 1\r\n\r\n",
    ],
    [
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      null,
      "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nconnection: upgrade\r\n\r\n",
    ],
    ["GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", null, "GET /x HTTP/1.1\r\n\r\n"],
    [
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
      null,
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
  ];
  for (const [input, client, want] of cases) assertEquals(fwdReq(input, client), want, input);
});

Deno.test("writeForwardedRequestHead() sends x-forwarded-for as one list", () => {
  const cases: Array<[string, string | null, string]> = [
    [
      "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 3.3.3.3\r\nHost: a\r\nx-forwarded-for: 4.4.4.4\r\n\r\n",
      "2.2.2.2",
      "GET / HTTP/1.1\r\nHost: a\r\nx-forwarded-for: 1.1.1.1, 3.3.3.3, 4.4.4.4, 2.2.2.2\r\n\r\n",
    ],
    // Without a client address to add, the caller's lines go on as they are.
    [
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
      null,
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
    ],
  ];
  for (const [input, client, want] of cases) assertEquals(fwdReq(input, client), want, input);
});

Deno.test("writeForwardedRequestHead() on the inbound drops forgeable identity fields and names the caller", () => {
  const input =
    "POST /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-Client-Cert: By=spiffe://t/svc/admin\r\n" +
    "x-skein-caller: spiffe://t/svc/admin\r\nX-Skein-Forwarded-Peer: spiffe://t/svc/admin\r\n" +
    "Forwarded: for=1.2.3.4\r\nX-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\n" +
    "X-Method-Override: DELETE\r\nX-Keep: 1\r\nContent-Length: 0\r\n\r\n";
  const r = requestHeadParser().push(enc.encode(input));
  assert(r);
  const w = new ByteWriter(8);
  writeForwardedRequestHead(
    w,
    r.head,
    "10.0.0.1",
    undefined,
    "x-skein-caller: spiffe://t/svc/web\r\n",
  );
  assertEquals(
    dec.decode(w.view()),
    "POST /x HTTP/1.1\r\nHost: a\r\nX-Keep: 1\r\nContent-Length: 0\r\n" +
      "x-forwarded-for: 10.0.0.1\r\nx-skein-caller: spiffe://t/svc/web\r\n\r\n",
  );
  // Without a verified caller nothing is claimed, and the forged fields still go.
  const r2 = requestHeadParser().push(enc.encode(input));
  assert(r2);
  const w2 = new ByteWriter(8);
  writeForwardedRequestHead(w2, r2.head, null, undefined, null);
  assertEquals(
    dec.decode(w2.view()),
    "POST /x HTTP/1.1\r\nHost: a\r\nX-Keep: 1\r\nContent-Length: 0\r\n\r\n",
  );
  // On the caller's side (no caller line) identity fields pass; the callee drops them.
  assert(fwdReq(input, null).includes("X-HTTP-Method-Override: DELETE\r\n"));
});

Deno.test("a listed or repeated Content-Length is forwarded once, as one number", () => {
  for (
    const cl of ["Content-Length: 5, 5\r\n", "Content-Length: 5\r\ncontent-length: 5\r\n"]
  ) {
    const req = `POST / HTTP/1.1\r\nHost: a\r\n${cl}X: 1\r\n\r\n`;
    assertEquals(
      fwdReq(req, null),
      "POST / HTTP/1.1\r\nHost: a\r\nX: 1\r\ncontent-length: 5\r\n\r\n",
    );
    const res = `HTTP/1.1 200 OK\r\n${cl}X: 1\r\n\r\n`;
    assertEquals(fwdRes(res, false), "HTTP/1.1 200 OK\r\nX: 1\r\ncontent-length: 5\r\n\r\n");
  }
  // One plain number is copied as it is.
  assertEquals(
    fwdReq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", null),
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
  );
});

Deno.test("writeForwardedRequestHead() honours fields marked hop-by-hop after parsing", () => {
  const input =
    "GET /a HTTP/1.1\r\nX-Skein-Destination: evil\r\nHost: a\r\nx-skein-destination: e2\r\n\r\n";
  const r = requestHeadParser().push(enc.encode(input + "body"));
  assert(r);
  // What the router does to a caller-supplied destination header.
  r.head.hop[0] = true;
  r.head.hop[2] = true;
  r.head.hasHopByHop = true;
  r.head.target = "/b";
  r.head.targetRewritten = true;
  const w = new ByteWriter(8);
  writeForwardedRequestHead(w, r.head, "::1", "x-skein-destination: app\r\n");
  assertEquals(
    dec.decode(w.view()),
    "GET /b HTTP/1.1\r\nHost: a\r\nx-forwarded-for: ::1\r\nx-skein-destination: app\r\n\r\n",
  );
  // A head without fields still ends with exactly one blank line.
  const bare = requestHeadParser().push(enc.encode("GET / HTTP/1.0\r\n\r\n"));
  assert(bare);
  const w2 = new ByteWriter(8);
  writeForwardedRequestHead(w2, bare.head, null);
  assertEquals(dec.decode(w2.view()), "GET / HTTP/1.1\r\n\r\n");
});

Deno.test("markHopByHop() drops every field of a name, however the names were read", () => {
  const input =
    "GET / HTTP/1.1\r\nX-Skein-Destination: a\r\nHost: h\r\nx-skein-destination: b\r\nX: 1\r\n\r\n";
  for (const decodeFirst of [false, true]) {
    const r = requestHeadParser().push(enc.encode(input));
    assert(r);
    if (decodeFirst) assertEquals(r.head.names.length, 4);
    assertEquals(markHopByHop(r.head, "x-skein-destination"), 2);
    assertEquals(markHopByHop(r.head, "X-Skein-Destination"), 0, "names are matched lower-cased");
    assertEquals(markHopByHop(r.head, "absent"), 0);
    assertEquals(r.head.hop, [true, false, true, false]);
    const w = new ByteWriter(8);
    writeForwardedRequestHead(w, r.head, null);
    assertEquals(dec.decode(w.view()), "GET / HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n");
  }
  const clean = requestHeadParser().push(enc.encode("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert(clean);
  assertEquals([markHopByHop(clean.head, "x"), clean.head.hasHopByHop], [0, false]);
});

Deno.test("writeForwardedResponseHead() copies clean heads verbatim and marks closes", () => {
  const clean = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
  assertEquals(fwdRes(clean, false), clean);
  assertEquals(
    fwdRes(clean, true),
    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n",
  );
  assertEquals(
    fwdRes(
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX: 1\r\n\r\n",
      false,
    ),
    "HTTP/1.1 200 OK\r\nX: 1\r\n\r\n",
  );
  assertEquals(
    fwdRes(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      false,
    ),
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nconnection: upgrade\r\n\r\n",
  );
});

Deno.test("proxyResponseBytes() names the proxy and the cause", () => {
  const text = dec.decode(
    proxyResponseBytes({
      status: 503,
      node: "vm-1",
      cause: "no_endpoint",
      message: "no endpoint for ledger",
      close: false,
    }),
  );
  const r = responseHeadParser().push(enc.encode(text));
  assert(r);
  assertEquals(r.head.status, 503);
  assertEquals(r.head.values[r.head.names.indexOf("x-skein-proxy")], "vm-1");
  assertEquals(r.head.values[r.head.names.indexOf("x-skein-error")], "no_endpoint");
  assertEquals(dec.decode(r.rest), "no endpoint for ledger\n");
  assertEquals(r.head.contentLength, r.rest.length);
});

Deno.test("responseBodyKind() follows RFC 9112 section 6.3", () => {
  const kind = (method: string, s: string) => {
    const r = responseHeadParser().push(enc.encode(s));
    assert(r);
    return responseBodyKind(method, r.head);
  };
  assertEquals(kind("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), "none");
  assertEquals(kind("GET", "HTTP/1.1 204 No Content\r\n\r\n"), "none");
  assertEquals(kind("GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"), "none");
  assertEquals(kind("GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), "length");
  assertEquals(kind("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "chunked");
  assertEquals(kind("GET", "HTTP/1.1 200 OK\r\n\r\n"), "close");
  assertEquals(kind("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), "close");
});
