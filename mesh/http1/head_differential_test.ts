/**
 * The optimized parser in `head.ts` must behave exactly like a straightforward one
 * (`tests/http1/reference_head.ts`): same heads, same errors, same statuses. The parser is a security
 * boundary, so this compares both on many seeded, generated heads full of edge cases.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import * as ref from "../../tests/http1/reference_head.ts";
import {
  ByteWriter,
  DEFAULT_HEAD_LIMITS,
  findHeadEnd,
  headerValue,
  type HeadLimits,
  type HttpHead,
  HttpParseError,
  newHeadScan,
  parseRequestHead,
  parseResponseHead,
  writeForwardedRequestHead,
  writeForwardedResponseHead,
} from "./mod.ts";

/** Heads generated per kind (requests, responses); enough to hit every listed edge often. */
const CASES_PER_KIND = 8000;

/** Deterministic PRNG (mulberry32) so a failing case can be reproduced from its seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = [
  "Host",
  "host",
  "HOST",
  "Content-Length",
  "content-length",
  "CONTENT-LENGTH",
  "Transfer-Encoding",
  "transfer-encoding",
  "Connection",
  "connection",
  "Upgrade",
  "Expect",
  "expect",
  "Keep-Alive",
  "TE",
  "te",
  "Trailer",
  "Proxy-Connection",
  "proxy-authorization",
  "Proxy-Authenticate",
  "Proxy-",
  "proxy",
  "Proxy-X",
  "X-Foo",
  "x-foo",
  "X-Bar",
  "Content-Type",
  "Date",
  "Vary",
  "User-Agent",
  "Accept",
  "x-skein-destination",
  "X-Forwarded-For",
  "x-forwarded-for",
  "Forwarded",
  "X-Skein-Caller",
  "X-HTTP-Method-Override",
  "x-forwarded-client-cert",
  "Host2",
  "Hos",
  "Content-Lengths",
  "Transfer_Encoding",
  "Te~",
  "Upgrade-Insecure-Requests",
  "Ex!pect",
  "Bad Name",
  "",
  "X\u00e9",
  "X\rY",
];

const VALUES = [
  "",
  " ",
  "a",
  "127.0.0.1:18083",
  "  a:80 \t",
  "0",
  "5",
  "05",
  " 5 ",
  "5, 5",
  "5,5",
  "5,6",
  "5, ",
  ",5",
  "6",
  "123456789012345",
  "1234567890123456",
  "999999999999999",
  "+5",
  "-1",
  "5 5",
  "0x5",
  "5\u00a0",
  "\u00a05",
  "1e3",
  "chunked",
  "Chunked",
  "CHUNKED",
  "gzip",
  "gzip, chunked",
  "chunked, gzip",
  "chunked, chunked",
  "gzip,,chunked",
  " , ",
  "identity",
  "chunkedx",
  "close",
  "Close",
  "keep-alive",
  "Keep-Alive",
  "upgrade",
  "Upgrade",
  "keep-alive, x-foo",
  "close, upgrade",
  "x-bar, X-Foo",
  "te, trailer",
  "host",
  "content-length",
  "websocket",
  "100-continue",
  "100-Continue",
  " 100-continue ",
  "100-continue, x",
  "caf\u00e9",
  "\u00ff\u0080",
  "a\tb",
  "a\x01b",
  "a\x7fb",
  "a\rb",
  "a\x00",
  "text/plain;charset=UTF-8",
  "v".repeat(63),
  "v".repeat(150),
  "v".repeat(70) + "\nX: y",
  "v".repeat(70) + "\rX: y",
  "1".repeat(90),
];

/** Names passed to headerValue(): every generated name lower-cased, and a few that never match. */
const LOOKUP_NAMES = [...new Set(NAMES.map((n) => n.toLowerCase())), "Host", "x-missing", "x-"];

const METHODS = ["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "get", "G@T", ""];
const TARGETS = ["/", "/a/b?c=d", "*", "http://x/y", "/caf\u00e9", "/a b", "", "/\x7f"];
const VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "HTTP/1.", "http/1.1", "HTTP/11"];
const STATUS_LINES = [
  "HTTP/1.1 200 OK",
  "HTTP/1.1 200 ",
  "HTTP/1.1 204",
  "HTTP/1.0 200 OK",
  "HTTP/1.1 101 Switching Protocols",
  "HTTP/1.1 404 Not Found",
  "HTTP/1.1 099 Low",
  "HTTP/1.1 20 OK",
  "HTTP/1.1 200OK",
  "HTTP/1.1 200 caf\u00e9",
  "HTTP/1.1 200 a\x01b",
  "HTTP/3.0 200 OK",
  "HTTP/1.1 999 Max",
];
/** Raw lines inserted as they are, to exercise line-level rules. */
const ODD_LINES = [
  " folded",
  "\tfolded",
  "X: a\r\n b",
  ": empty-name",
  "NoColon",
  "X : space-before-colon",
  "X:no-space",
  "X:   ",
  "X: \u00e9\u00e9",
  "X: a\nY: b",
  "X: a\n",
];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

function fieldLines(rand: () => number): string {
  let s = "";
  const n = Math.floor(rand() * 7);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.05) s += pick(rand, ODD_LINES) + "\r\n";
    else if (r < 0.1) s += "Host: " + pick(rand, ["a", "b:80", "", "x"]) + "\r\n";
    else s += `${pick(rand, NAMES)}:${rand() < 0.7 ? " " : ""}${pick(rand, VALUES)}\r\n`;
  }
  return s;
}

function genRequest(rand: () => number): string {
  const lead = rand() < 0.05 ? "\r\n".repeat(1 + Math.floor(rand() * 6)) : "";
  const line = rand() < 0.9
    ? `${pick(rand, ["GET", "POST", "HEAD"])} / ${rand() < 0.8 ? "HTTP/1.1" : "HTTP/1.0"}`
    : `${pick(rand, METHODS)}${pick(rand, [" ", "  ", "\t"])}${pick(rand, TARGETS)} ${
      pick(rand, VERSIONS)
    }`;
  const host = rand() < 0.7 ? "Host: h\r\n" : "";
  return `${lead}${line}\r\n${host}${fieldLines(rand)}\r\n`;
}

function genResponse(rand: () => number): string {
  const line = rand() < 0.8 ? "HTTP/1.1 200 OK" : pick(rand, STATUS_LINES);
  return `${line}\r\n${fieldLines(rand)}\r\n`;
}

const bytesOf = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Everything observable about a head, including what the proxy forwards. */
function observe(h: HttpHead & Record<string, unknown>, isRequest: boolean) {
  // Looked up before anything decodes the names, so the byte-comparing path is the one tested.
  const lookups = LOOKUP_NAMES.map((name) => headerValue(h, name));
  const n = h.names.length;
  const o: Record<string, unknown> = {
    start: h.start,
    end: h.end,
    firstLineEnd: h.firstLineEnd,
    versionMinor: h.versionMinor,
    names: [...h.names],
    values: [...h.values],
    lineStarts: [...h.lineStarts],
    lineEnds: [...h.lineEnds],
    hop: [...h.hop],
    hasHopByHop: h.hasHopByHop,
    contentLength: h.contentLength,
    chunked: h.chunked,
    otherTransferCoding: h.otherTransferCoding,
    keepAlive: h.keepAlive,
    upgrade: h.upgrade,
    hasObsText: h.hasObsText,
    lookups,
    lookupsAfter: LOOKUP_NAMES.map((name) => headerValue(h, name)),
  };
  // The rewriter copies field lines as one run when nothing is hop-by-hop; it relies on them
  // being contiguous from the end of the start line to the blank line.
  if (n > 0) assertEquals([h.lineStarts[0], h.lineEnds[n - 1]], [h.firstLineEnd, h.end - 2]);
  for (
    const k of isRequest ? ["method", "target", "host", "expectContinue"] : ["status", "reason"]
  ) {
    o[k] = h[k];
  }
  return o;
}

function forwarded(h: HttpHead, isRequest: boolean): string {
  const w = new ByteWriter(64);
  if (isRequest) {
    writeForwardedRequestHead(
      w,
      h as never,
      "10.0.0.9",
      "x-skein-destination: a\r\n",
      "x-skein-caller: spiffe://t/svc/a\r\n",
    );
  } else writeForwardedResponseHead(w, h as never, false);
  const c = new ByteWriter(64);
  if (!isRequest) writeForwardedResponseHead(c, h as never, true);
  return String.fromCharCode(...w.view()) + "|" + String.fromCharCode(...c.view());
}

type Outcome = { error: [string, number, string] } | { head: unknown; out: string };

function run(
  input: Uint8Array,
  isRequest: boolean,
  limits: HeadLimits,
  impl: "new" | "ref",
  step: number,
): Outcome {
  try {
    const scan = impl === "new" ? newHeadScan(0) : ref.newHeadScan(0);
    const find = impl === "new" ? findHeadEnd : ref.findHeadEnd;
    let end = -1;
    // Bytes arrive in pieces, so resumed scans (and where they stop) are compared too.
    for (let have = Math.min(step, input.length); end === -1; have += step) {
      end = find(input, Math.min(have, input.length), scan, limits.maxHeadBytes);
      if (have >= input.length) break;
    }
    if (end === -1) return { error: ["incomplete", 0, ""] };
    const parse = isRequest
      ? (impl === "new" ? parseRequestHead : ref.parseRequestHead)
      : (impl === "new" ? parseResponseHead : ref.parseResponseHead);
    const h = parse(input, scan.start, end, limits) as unknown as
      & HttpHead
      & Record<string, unknown>;
    // Decode-on-demand must not depend on the order of reads: forward before decoding.
    const out = forwarded(h, isRequest);
    return { head: observe(h, isRequest), out };
  } catch (e) {
    if (e instanceof HttpParseError) {
      return { error: [e.code, e.status, e.message] };
    }
    throw e;
  }
}

const LIMITS: HeadLimits[] = [
  DEFAULT_HEAD_LIMITS,
  { maxHeadBytes: 80, maxHeaderCount: 3, maxBodyBytes: 5 },
  { maxHeadBytes: 200, maxHeaderCount: 100, maxBodyBytes: 1e9 },
];

for (const isRequest of [true, false]) {
  Deno.test(
    `parse${
      isRequest ? "Request" : "Response"
    }Head() matches the reference parser on generated heads`,
    () => {
      const rand = rng(isRequest ? 1 : 2);
      const seenErrors = new Set<string>();
      let parsed = 0;
      for (let i = 0; i < CASES_PER_KIND; i++) {
        const text = isRequest ? genRequest(rand) : genResponse(rand);
        const input = bytesOf("xx" + text + "body").subarray(2);
        const limits = LIMITS[i % LIMITS.length]!;
        const step = 1 + Math.floor(rand() * 100);
        const got = run(input, isRequest, limits, "new", step);
        const want = run(input, isRequest, limits, "ref", step);
        assertEquals(got, want, `case ${i} (step ${step}): ${JSON.stringify(text)}`);
        if ("error" in want) seenErrors.add(want.error[0]);
        else parsed++;
      }
      // The generator must reach both outcomes and most error kinds, or it proves little.
      assert(parsed > CASES_PER_KIND / 8, `only ${parsed} heads parsed`);
      assert(seenErrors.size >= (isRequest ? 16 : 12), [...seenErrors].join(", "));
    },
  );
}
