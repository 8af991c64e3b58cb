import { assertEquals } from "../../tests/assert.ts";
import { crc32c } from "./crc32c.ts";

/** A plain bitwise CRC-32C, the slow reference the sliced version must agree with. */
function referenceCrc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("crc32c() matches the published check value and RFC 3720 vectors", () => {
  const enc = new TextEncoder();
  assertEquals(crc32c(enc.encode("123456789")), 0xe3069283, "check value");
  assertEquals(crc32c(new Uint8Array(0)), 0, "empty");
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa, "32 zero bytes");
  assertEquals(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43, "32 0xff bytes");
  const inc = new Uint8Array(32).map((_, i) => i);
  assertEquals(crc32c(inc), 0x46dd794e, "incrementing bytes");
});

Deno.test("crc32c() agrees with a bitwise reference for every length and alignment", () => {
  let x = 12345;
  const data = new Uint8Array(300).map(() => (x = (x * 1103515245 + 12345) >>> 0) >>> 24);
  for (let start = 0; start < 9; start++) {
    for (let len = 0; len + start <= data.length; len += 7) {
      const view = data.subarray(start, start + len);
      assertEquals(crc32c(view), referenceCrc32c(view), `start ${start} len ${len}`);
    }
  }
});

Deno.test("crc32c() continues a running checksum through the seed", () => {
  const data = new TextEncoder().encode("the quick brown fox jumps over the lazy dog");
  const whole = crc32c(data);
  for (let cut = 0; cut <= data.length; cut++) {
    assertEquals(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), whole, `cut ${cut}`);
  }
});
