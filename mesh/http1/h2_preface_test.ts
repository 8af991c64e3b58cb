import { assert, assertEquals } from "../../tests/assert.ts";
import { findHeadEnd, H2_PREFACE, HttpParseError, newHeadScan, parseRequestHead } from "./mod.ts";
import { startsWithH2Preface } from "./h2_preface.ts";

const _enc = new TextEncoder();

Deno.test("startsWithH2Preface() knows the preface and nothing else", () => {
  const settings = new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0, 0]);
  const both = new Uint8Array([...H2_PREFACE, ...settings]);
  assert(startsWithH2Preface(both, 0, both.length));
  assert(startsWithH2Preface(H2_PREFACE, 0, 18), "the head part alone is enough to decide");
  assert(!startsWithH2Preface(H2_PREFACE, 0, 17));
  const wrongTail = _enc.encode("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
  assert(!startsWithH2Preface(wrongTail, 0, wrongTail.length));
  const h1 = _enc.encode("GET / HTTP/2.0\r\nHost: a\r\n\r\n");
  assert(!startsWithH2Preface(h1, 0, h1.length));
});

Deno.test("the HTTP/1 parser reaches the preface as a version error (the only place it is checked)", () => {
  const end = findHeadEnd(H2_PREFACE, H2_PREFACE.length, newHeadScan(0), 1024);
  assertEquals(end, 18);
  try {
    parseRequestHead(H2_PREFACE, 0, end);
    throw new Error("parsed");
  } catch (e) {
    assert(e instanceof HttpParseError);
    assertEquals(e.code, "bad_version");
  }
});
