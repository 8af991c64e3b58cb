import assert from "node:assert/strict";
import { controlCharPath, hasControlChars, instanceAddress } from "./registry_limits.ts";

Deno.test("hasControlChars() finds C0, DEL, C1 and format characters, not other text", () => {
  for (
    const s of ["\u0000", "a\r", "\u001b[0m", "\u007f", "\u0085", "\u202e", "\u200b", "\ufeff"]
  ) {
    assert.equal(hasControlChars(s), true, JSON.stringify(s));
  }
  for (const s of ["", "v1.2-rc.1", "zone a", "ünïcödé 名前", "emoji 🙂"]) {
    assert.equal(hasControlChars(s), false, JSON.stringify(s));
  }
});

Deno.test("controlCharPath() names the first string or key holding one", () => {
  assert.equal(controlCharPath({ a: ["x", { b: "ok" }] }), null);
  assert.equal(controlCharPath({ a: ["x", { b: "n\u0000" }] }), "a[1].b");
  assert.equal(controlCharPath({ a: { "k\u001b": 1 } }), "a.(a key)");
  assert.equal(controlCharPath("\r"), "(value)");
  let deep: unknown = "x";
  for (let i = 0; i < 100; i++) deep = [deep];
  assert.match(controlCharPath(deep) ?? "", /nested too deeply/);
});

Deno.test("instanceAddress accepts IPs and host names only", () => {
  for (const a of ["10.0.0.1", "::1", "fd00::1", "web-1.example", "localhost"]) {
    assert.equal(instanceAddress.safeParse(a).success, true, a);
  }
  for (const a of ["", "10.0.0.1 x", "http://h/", "h\u001b", "a/b", "999.1.1.1", "x".repeat(254)]) {
    assert.equal(instanceAddress.safeParse(a).success, false, a);
  }
});
