import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import {
  findHeadEnd,
  headerValue,
  HttpParseError,
  latin1,
  newHeadScan,
  parseRequestHead,
  parseResponseHead,
  type RequestHead,
  requestHeadParser,
  responseHeadParser,
} from "./mod.ts";

const enc = new TextEncoder();

function parseReq(s: string): RequestHead {
  const b = enc.encode(s);
  const scan = newHeadScan(0);
  const end = findHeadEnd(b, b.length, scan);
  if (end === -1) throw new Error("incomplete head");
  return parseRequestHead(b, scan.start, end);
}

/** A projection of a parsed head that is comparable across buffers. */
function summary(h: RequestHead) {
  return {
    method: h.method,
    target: h.target,
    versionMinor: h.versionMinor,
    names: h.names,
    values: h.values,
    hop: h.hop,
    contentLength: h.contentLength,
    chunked: h.chunked,
    keepAlive: h.keepAlive,
    upgrade: h.upgrade,
    host: h.host,
    expectContinue: h.expectContinue,
  };
}

const good: Array<[string, string, Partial<ReturnType<typeof summary>>]> = [
  ["simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", {
    method: "GET",
    target: "/",
    host: "a",
    keepAlive: true,
    contentLength: -1,
  }],
  [
    "values are trimmed, names lower-cased",
    "GET /x?y=1 HTTP/1.1\r\nHOST:  a:80 \t\r\nX-A:b\r\n\r\n",
    {
      names: ["host", "x-a"],
      values: ["a:80", "b"],
    },
  ],
  ["content-length", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", {
    contentLength: 12,
    chunked: false,
  }],
  [
    "identical content-length repeated",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\n",
    {
      contentLength: 5,
    },
  ],
  ["chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", {
    chunked: true,
    contentLength: -1,
  }],
  ["connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", {
    keepAlive: false,
    hop: [false, true],
  }],
  ["HTTP/1.0 defaults to close", "GET / HTTP/1.0\r\n\r\n", {
    keepAlive: false,
    versionMinor: 0,
    host: null,
  }],
  ["HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", { keepAlive: true }],
  [
    "connection-named fields are hop-by-hop",
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-foo\r\nX-Foo: 1\r\nX-Bar: 2\r\nKeep-Alive: 5\r\nProxy-Authorization: z\r\n\r\n",
    {
      hop: [false, true, true, false, true, true],
    },
  ],
  [
    "upgrade keeps Upgrade",
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    {
      upgrade: true,
      hop: [false, true, false],
    },
  ],
  [
    "Upgrade without Connection: upgrade is dropped",
    "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
    {
      upgrade: false,
      hop: [false, true],
    },
  ],
  [
    "expect 100-continue",
    "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
    {
      expectContinue: true,
    },
  ],
  ["leading empty line tolerated", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", { method: "GET" }],
  ["obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\u00e9\r\n\r\n", {}],
  ["empty value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", { values: ["a", ""] }],
];

Deno.test("parseRequestHead() accepts well-formed requests", () => {
  for (const [name, input, want] of good) {
    let text = input;
    // é must be the single byte 0xE9 on the wire, not UTF-8.
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    text = "";
    const scan = newHeadScan(0);
    const end = findHeadEnd(bytes, bytes.length, scan);
    assert(end === bytes.length, `${name}: head end`);
    const got = summary(parseRequestHead(bytes, scan.start, end));
    for (const [k, v] of Object.entries(want)) {
      assertEquals(got[k as keyof typeof got], v, `${name}: ${k}`);
    }
  }
});

const bad: Array<[string, string, number, string]> = [
  ["lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "bad_version"],
  ["HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "bad_version"],
  ["missing target", "GET  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request_line"],
  ["two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_version"],
  ["no version", "GET /\r\nHost: a\r\n\r\n", 400, "bad_request_line"],
  ["method with a bad char", "G(ET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request_line"],
  ["control char in target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request_line"],
  ["space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "bad_header_name"],
  ["no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400, "bad_header_name"],
  ["empty name", "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", 400, "bad_header_name"],
  ["bad char in name", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400, "bad_header_name"],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400, "obs_fold"],
  ["whitespace before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "obs_fold"],
  ["NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, "bad_header_value"],
  ["bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "bare_cr"],
  ["bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare_lf"],
  ["bare LF ending head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare_lf"],
  [
    "CL and TE",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    400,
    "content_length_and_transfer_encoding",
  ],
  [
    "TE and CL",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    400,
    "content_length_and_transfer_encoding",
  ],
  [
    "differing CL",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
    400,
    "conflicting_content_length",
  ],
  [
    "differing CL in a list",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n",
    400,
    "conflicting_content_length",
  ],
  [
    "negative CL",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    400,
    "bad_content_length",
  ],
  [
    "hex CL",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
    400,
    "bad_content_length",
  ],
  [
    "huge CL",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
    400,
    "bad_content_length",
  ],
  ["empty CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400, "bad_content_length"],
  [
    "chunked not final",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    400,
    "chunked_not_final",
  ],
  [
    "chunked twice",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    400,
    "chunked_not_final",
  ],
  [
    "unknown coding",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    501,
    "unsupported_transfer_encoding",
  ],
  [
    "gzip then chunked",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    501,
    "chunked_not_final",
  ],
  [
    "TE in HTTP/1.0",
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    400,
    "unsupported_transfer_encoding",
  ],
  ["missing Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400, "missing_host"],
  ["two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate_host"],
  [
    "too many fields",
    "GET / HTTP/1.1\r\nHost: a\r\n" + "X: 1\r\n".repeat(100) + "\r\n",
    431,
    "too_many_headers",
  ],
  [
    "head too large",
    "GET / HTTP/1.1\r\nHost: a\r\nX: " + "a".repeat(70_000) + "\r\n\r\n",
    431,
    "head_too_large",
  ],
  [
    "too many empty lines",
    "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    400,
    "bad_request_line",
  ],
];

Deno.test("parseRequestHead() rejects malformed requests with the status to answer", () => {
  assert(bad.length > 20);
  for (const [name, input, status, code] of bad) {
    const err = assertThrowsParse(() => parseReq(input), name);
    assertEquals([err.status, err.code], [status, code], name);
  }
});

function assertThrowsParse(fn: () => unknown, name: string): HttpParseError {
  try {
    fn();
  } catch (e) {
    if (e instanceof HttpParseError) return e;
    throw new Error(`${name}: threw a non-parse error: ${e}`);
  }
  throw new Error(`${name}: did not throw`);
}

Deno.test("parseRequestHead() enforces maxBodyBytes with 413", () => {
  const b = enc.encode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n");
  const err = assertThrowsParse(
    () =>
      parseRequestHead(b, 0, b.length, {
        maxHeadBytes: 1024,
        maxHeaderCount: 10,
        maxBodyBytes: 100,
      }),
    "413",
  );
  assertEquals(err.status, 413);
});

Deno.test("findHeadEnd() reports an oversized head before it is complete", () => {
  const b = enc.encode("GET / HTTP/1.1\r\nX: " + "a".repeat(2000));
  assertEquals(findHeadEnd(b, 1000, newHeadScan(0), 4096), -1);
  assertThrows(() => findHeadEnd(b, b.length, newHeadScan(0), 1024), HttpParseError);
});

/** Deterministic PRNG (mulberry32) so a failing split can be reproduced from its seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function splitRandomly(bytes: Uint8Array, rand: () => number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let p = 0;
  while (p < bytes.length) {
    const n = 1 + Math.floor(rand() * Math.min(16, bytes.length - p));
    parts.push(bytes.slice(p, p + n));
    p += n;
  }
  return parts;
}

Deno.test("HeadParser gives the same result however the bytes are split", () => {
  const inputs = [
    ...good.map((g) => g[1]),
    ...bad.filter((b) => b[1].length < 5000).map((b) => b[1]),
  ];
  for (let seed = 1; seed <= 40; seed++) {
    const rand = rng(seed);
    for (const input of inputs) {
      const bytes = Uint8Array.from(input + "tail", (c) => c.charCodeAt(0));
      let whole: unknown;
      try {
        const r = requestHeadParser().push(bytes);
        whole = r === null ? null : { ...summary(r.head), rest: [...r.rest] };
      } catch (e) {
        whole = e instanceof HttpParseError ? e.code : e;
      }
      let split: unknown = null;
      const p = requestHeadParser();
      try {
        for (const part of splitRandomly(bytes, rand)) {
          const r = p.push(part);
          if (r !== null) {
            // Bytes after the head come back as `rest`; collect the remaining parts too.
            split = { ...summary(r.head), rest: [...r.rest] };
            break;
          }
        }
      } catch (e) {
        split = e instanceof HttpParseError ? e.code : e;
      }
      if (
        split !== null && typeof split === "object" && whole !== null && typeof whole === "object"
      ) {
        // The split parse stops at the chunk holding the head end, so compare only the head.
        const { rest: _a, ...hs } = split as Record<string, unknown>;
        const { rest: _b, ...hw } = whole as Record<string, unknown>;
        assertEquals(hs, hw, `seed ${seed}: ${JSON.stringify(input)}`);
      } else {
        assertEquals(split, whole, `seed ${seed}: ${JSON.stringify(input)}`);
      }
    }
  }
});

Deno.test("parseResponseHead() reads status, framing and keep-alive", () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", {
      status: 200,
      reason: "OK",
      contentLength: 5,
      keepAlive: true,
    }],
    ["HTTP/1.1 204\r\n\r\n", { status: 204, reason: "" }],
    ["HTTP/1.0 200 OK\r\n\r\n", { versionMinor: 0, keepAlive: false }],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", {
      chunked: true,
      keepAlive: false,
    }],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", {
      chunked: false,
      otherTransferCoding: true,
    }],
    ["HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", {
      status: 101,
      upgrade: true,
    }],
  ];
  for (const [input, want] of cases) {
    const r = responseHeadParser().push(enc.encode(input));
    assert(r !== null, input);
    for (const [k, v] of Object.entries(want)) {
      assertEquals((r.head as unknown as Record<string, unknown>)[k], v, `${input}: ${k}`);
    }
  }
  const badResponses = [
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 200OK\r\n\r\n",
    "HTTP/3.0 200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
  ];
  for (const input of badResponses) {
    const err = assertThrowsParse(() => responseHeadParser().push(enc.encode(input)), input);
    assertEquals(err.status, 502, input);
  }
  const b = enc.encode("xxHTTP/1.1 200 OK\r\n\r\n");
  assertEquals(parseResponseHead(b, 2, b.length).status, 200);
});

Deno.test("latin1() decodes every byte to the same char code at any length", () => {
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff);
  for (const n of [0, 1, 2, 3, 4, 5, 15, 63, 64, 65, 200]) {
    const s = latin1(bytes, 7, 7 + n);
    assertEquals(s.length, n);
    assertEquals([...s].map((c) => c.charCodeAt(0)), [...bytes.subarray(7, 7 + n)], `n=${n}`);
  }
  assertEquals(latin1(bytes, 9, 4), "");
});

Deno.test("headerValue() finds the first field by lower-cased name, before and after decoding", () => {
  const h = parseReq("GET / HTTP/1.1\r\nHost: a\r\nX-Id:  one \r\nx-id: two\r\nX-Empty:\r\n\r\n");
  const lookups = () =>
    ["x-id", "host", "x-empty", "X-Id", "x-i", "x-idd", "absent"].map((n) => headerValue(h, n));
  const want = ["one", "a", "", null, null, null, null];
  assertEquals(lookups(), want);
  assertEquals(h.values, ["a", "one", "two", ""]);
  assertEquals(h.names, ["host", "x-id", "x-id", "x-empty"]);
  assertEquals(lookups(), want);
});

Deno.test("parsed heads keep reads stable and accept the mutations proxies make", () => {
  const h = parseReq("GET /a HTTP/1.1\r\nHost: a\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\n");
  assertEquals([h.hasHopByHop, h.hop], [false, [false, false, false]]);
  // The router marks a field hop-by-hop by writing into `hop`; the same array must persist.
  h.hop[1] = true;
  h.hasHopByHop = true;
  assertEquals(h.hop, [false, true, false]);
  assertEquals(h.names, h.names);
  assert(h.names === h.names && h.values === h.values);
  h.target = "/b";
  h.targetRewritten = true;
  assertEquals([h.target, h.targetRewritten], ["/b", true]);
});

Deno.test("parseResponseHead() decodes the reason phrase on demand", () => {
  const b = enc.encode("HTTP/1.1 404 Not  Found \r\nA: 1\r\n\r\n");
  const r = parseResponseHead(b, 0, b.length);
  assertEquals([r.status, r.reason, r.names, r.values], [404, "Not  Found ", ["a"], ["1"]]);
  const b2 = enc.encode("HTTP/1.1 204\r\n\r\n");
  assertEquals(parseResponseHead(b2, 0, b2.length).reason, "");
});

Deno.test("methods are decoded exactly, common ones included", () => {
  for (const m of ["GET", "PUT", "POST", "HEAD", "DELETE", "GEt", "PUX", "POSt", "M-SEARCH", "X"]) {
    assertEquals(parseReq(`${m} / HTTP/1.1\r\nHost: a\r\n\r\n`).method, m);
  }
});

Deno.test("a request asking for capabilities is flagged at parse time; others cost no lookup", () => {
  assertEquals(
    parseReq("GET / HTTP/1.1\r\nHost: a\r\nX-Skein-Capability: gpu\r\n\r\n").asksCapability,
    true,
  );
  assertEquals(
    parseReq("GET / HTTP/1.1\r\nHost: a\r\nx-skein-capabilitx: gpu\r\n\r\n").asksCapability,
    false,
  );
  assertEquals(parseReq("GET / HTTP/1.1\r\nHost: a\r\n\r\n").asksCapability, false);
});

Deno.test("a request carrying a field the record layer reads is flagged at parse time", () => {
  for (const f of ["Traceparent: x", "B3: x", "X-B3-TraceId: x", "X-Request-ID: x"]) {
    assertEquals(parseReq(`GET / HTTP/1.1\r\nHost: a\r\n${f}\r\n\r\n`).recordedFields, true, f);
  }
  for (const f of ["Tracestate: x", "B4: x", "X-B3-SpanId: x", "X-Request-IX: x"]) {
    assertEquals(parseReq(`GET / HTTP/1.1\r\nHost: a\r\n${f}\r\n\r\n`).recordedFields, false, f);
  }
});
