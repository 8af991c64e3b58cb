import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ChunkedFramer, HttpParseError } from "./mod.ts";

const enc = new TextEncoder();

/** Feeds `input` in pieces of `step` bytes; returns where the body ended or the error code. */
function frame(input: string, step: number): { end: number; payload: number } | string {
  const b = enc.encode(input);
  const f = new ChunkedFramer(1000);
  try {
    for (let p = 0; p < b.length; p += step) {
      const stop = Math.min(b.length, p + step);
      const at = f.feed(b, p, stop);
      if (f.done) return { end: at, payload: f.payloadBytes };
      assertEquals(at, stop);
    }
  } catch (e) {
    if (e instanceof HttpParseError) return e.code;
    throw e;
  }
  return "incomplete";
}

const cases: Array<[string, string, { end: number; payload: number } | string]> = [
  ["one chunk", "5\r\nhello\r\n0\r\n\r\nNEXT", { end: 15, payload: 5 }],
  ["hex sizes", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", { end: 35, payload: 20 }],
  ["extensions", "5;name=val ; x\r\nhello\r\n0;last\r\n\r\n", { end: 33, payload: 5 }],
  ["trailers", "1\r\nx\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\nNEXT", { end: 29, payload: 1 }],
  ["empty body", "0\r\n\r\n", { end: 5, payload: 0 }],
  ["missing size", "\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"],
  ["non-hex size", "g\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"],
  ["negative size", "-5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"],
  ["0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"],
  ["too many digits", "1000000000000000\r\n", "bad_chunk_size"],
  ["garbage after size", "5 6\r\nhello\r\n0\r\n\r\n", "bad_chunk_size"],
  ["bare LF after size", "5\nhello\r\n0\r\n\r\n", "bad_chunk_size"],
  ["data longer than size", "3\r\nhello\r\n0\r\n\r\n", "bad_chunk_framing"],
  ["bare LF after data", "5\r\nhello\n0\r\n\r\n", "bad_chunk_framing"],
  ["control byte in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", "bad_chunk_framing"],
  ["bare LF in trailer", "0\r\nX: 1\n\r\n", "bad_chunk_framing"],
  ["over the body limit", "3e9\r\n", "body_too_large"],
];

Deno.test("ChunkedFramer finds the body end or rejects bad framing, however bytes arrive", () => {
  for (const [name, input, want] of cases) {
    for (const step of [1, 2, 3, 7, 64, 4096]) {
      assertEquals(frame(input, step), want, `${name} (step ${step})`);
    }
  }
});

Deno.test("ChunkedFramer skips chunk data in bulk and can be reset", () => {
  const f = new ChunkedFramer();
  const head = enc.encode("100000\r\n");
  assertEquals(f.feed(head, 0, head.length), head.length);
  const data = new Uint8Array(0x100000);
  assertEquals(f.feed(data, 0, data.length), data.length);
  const tail = enc.encode("\r\n0\r\n\r\n");
  assertEquals(f.feed(tail, 0, tail.length), tail.length);
  assert(f.done);
  assertEquals(f.payloadBytes, 0x100000);
  f.reset();
  assert(!f.done);
});
