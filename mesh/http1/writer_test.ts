import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { ByteWriter } from "./mod.ts";

Deno.test("ByteWriter.bytes() copies short and long ranges the same way", () => {
  const src = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
  // Lengths around the loop/`set` switch-over, at odd offsets, into a writer that must grow.
  for (const n of [0, 1, 5, 127, 128, 129, 255, 256, 257, 600]) {
    const w = new ByteWriter(8);
    w.latin1("ab");
    w.bytes(src, 3, 3 + n);
    w.bytes(src, 10, 12);
    const want = [97, 98, ...src.subarray(3, 3 + n), ...src.subarray(10, 12)];
    assertEquals([...w.view()], want, `n=${n}`);
  }
  const whole = new ByteWriter(4);
  whole.bytes(src);
  assertEquals(whole.view(), src);
});

Deno.test("ByteWriter refuses to grow past its maximum", () => {
  const w = new ByteWriter(4, 300);
  w.bytes(new Uint8Array(300));
  assertThrows(() => w.bytes(new Uint8Array(1)), RangeError);
  assertEquals(w.len, 300);
});

Deno.test("ByteWriter.latin1() writes one byte per char", () => {
  const w = new ByteWriter(1);
  w.latin1("caf\u00e9\u00ff\r\n");
  assertEquals([...w.view()], [99, 97, 102, 0xe9, 0xff, 13, 10]);
});
