import assert from "node:assert/strict";
import { nodeId } from "../../common/ids.ts";
import { decodeHello, encodeHello, MAX_HELLO_BYTES, PROTOCOL_VERSION } from "./hello.ts";

Deno.test("decodeHello() reads back what encodeHello() wrote", () => {
  const r = decodeHello(encodeHello(nodeId("cp-1"), "prod-ü"));
  assert.deepStrictEqual(r, {
    ok: true,
    hello: { version: PROTOCOL_VERSION, node: nodeId("cp-1"), clusterId: "prod-ü" },
  });
});

Deno.test("encodeHello() of the longest ids fits MAX_HELLO_BYTES with room for the clock", () => {
  const h = encodeHello(nodeId("n".repeat(255)), "c".repeat(255));
  assert.deepStrictEqual(h.length + 8, MAX_HELLO_BYTES);
  assert.throws(() => encodeHello(nodeId("n".repeat(256)), "c"), RangeError);
  assert.throws(() => encodeHello(nodeId(""), "c"), RangeError);
});

Deno.test("decodeHello() rejects bad input with a reason", async (t) => {
  const good = encodeHello(nodeId("cp-1"), "prod");
  const cases: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(0), "bad_magic"],
    ["wrong magic", new TextEncoder().encode("GET / HTTP/1.1"), "bad_magic"],
    ["future version", Uint8Array.from(good, (b, i) => (i === 4 ? 2 : b)), "unsupported_version"],
    ["truncated", good.subarray(0, good.length - 1), "malformed"],
    ["trailing bytes", new Uint8Array([...good, 0]), "malformed"],
    ["no version", good.subarray(0, 4), "malformed"],
    ["empty node id", new Uint8Array([...good.subarray(0, 5), 0, 0]), "malformed"],
    [
      "invalid utf-8",
      new Uint8Array([...good.subarray(0, 5), 1, 0xff, 0]),
      "malformed",
    ],
  ];
  for (const [name, bytes, reason] of cases) {
    await t.step(name, () => {
      const r = decodeHello(bytes);
      assert(!r.ok, `${name} should be rejected`);
      assert.deepStrictEqual(r.reason, reason);
    });
  }
});

Deno.test("a hello carries the sender's clock when given, and one without it is still read", () => {
  const stamped = decodeHello(encodeHello(nodeId("cp-1"), "prod", 1_765_000_000_123));
  assert(stamped.ok);
  assert.equal(stamped.hello.sentAtMs, 1_765_000_000_123);
  const plain = decodeHello(encodeHello(nodeId("cp-1"), "prod"));
  assert(plain.ok);
  assert.equal(plain.hello.sentAtMs, undefined);
  const longest = encodeHello(nodeId("n".repeat(255)), "c".repeat(255), Date.now());
  assert.equal(longest.length, MAX_HELLO_BYTES);
  assert.throws(() => encodeHello(nodeId("cp-1"), "prod", -1), RangeError);
  const tooBig = new Uint8Array([...encodeHello(nodeId("cp-1"), "prod"), ...new Uint8Array(8)]);
  tooBig.fill(0xff, tooBig.length - 8);
  const r = decodeHello(tooBig);
  assert(!r.ok);
  assert.equal(r.reason, "malformed");
});
