import { assertEquals } from "../tests/assert.ts";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes joins chunks in order, with or without the total given", () => {
  const parts = [new Uint8Array([1, 2]), new Uint8Array([]), new Uint8Array([3])];
  assertEquals([...concatBytes(parts)], [1, 2, 3]);
  assertEquals([...concatBytes(parts, 3)], [1, 2, 3]);
  assertEquals(concatBytes([]).byteLength, 0);
});
