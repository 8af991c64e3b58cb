import assert from "node:assert/strict";
import { parseJsonBody } from "./body.ts";
import { ApiError } from "./errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("parseJsonBody() refuses bad UTF-8 and bad JSON, and parses the next body normally", () => {
  const cases: [Uint8Array, string][] = [
    [new Uint8Array([0x7b, 0xff, 0x7d]), "not valid UTF-8"],
    [new Uint8Array([0xe2, 0x82]), "not valid UTF-8"],
    [enc("{"), "not valid JSON"],
    [new Uint8Array(0), "empty"],
  ];
  for (const [bytes, want] of cases) {
    let e: unknown = null;
    try {
      parseJsonBody(bytes);
    } catch (err) {
      e = err;
    }
    assert.ok(e instanceof ApiError && e.code === "invalid_json", String(e));
    assert.ok(e.message.includes(want), e.message);
    // The shared decoder carries nothing from a failed body into the next one.
    assert.deepEqual(parseJsonBody(enc('{"v":"é"}')), { v: "é" });
  }
});
