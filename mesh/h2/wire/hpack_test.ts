import { assert, assertEquals, assertThrows } from "../../../tests/assert.ts";
import { Bytes, encodeField, HpackDecoder, HpackEncoder, HpackError } from "./hpack.ts";
import { huffmanDecode, HuffmanError } from "./huffman.ts";
import { STATIC_TABLE } from "./hpack_static.ts";

function hex(s: string): Uint8Array {
  const t = s.replace(/\s+/g, "");
  const b = new Uint8Array(t.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return b;
}

Deno.test("RFC 7541 C.3: requests without Huffman share one dynamic table", () => {
  const d = new HpackDecoder(4096, 65536);
  assertEquals(d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")).fields, [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assertEquals(d.tableSize, 57);
  assertEquals(d.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865")).fields, [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assertEquals(d.tableSize, 110);
  const third = d.decode(
    hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
  );
  assertEquals(third.fields, [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ]);
  assertEquals(d.tableSize, 164);
});

Deno.test("RFC 7541 C.4: requests with Huffman strings", () => {
  const d = new HpackDecoder(4096, 65536);
  assertEquals(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).fields, [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assertEquals(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")).fields.at(-1), [
    "cache-control",
    "no-cache",
  ]);
  assertEquals(
    d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")).fields.at(-1),
    ["custom-key", "custom-value"],
  );
  assertEquals(d.tableSize, 164);
});

Deno.test("RFC 7541 C.6: responses with Huffman and eviction in a 256-byte table", () => {
  const d = new HpackDecoder(256, 65536);
  const first = d.decode(hex(
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e" +
      "919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
  ));
  assertEquals(first.fields, [
    [":status", "302"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
  assertEquals(d.tableSize, 222);
  const second = d.decode(hex("4883 640e ffc1 c0bf"));
  assertEquals(second.fields[0], [":status", "307"]);
  assertEquals(d.tableSize, 222);
  const third = d.decode(hex(
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7" +
      "821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed" +
      "4ee5 b106 3d50 07",
  ));
  assertEquals(third.fields, [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
    ["location", "https://www.example.com"],
    ["content-encoding", "gzip"],
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
  ]);
  assertEquals(d.tableSize, 215);
});

Deno.test("hpack: the encoder's blocks decode to the same fields", () => {
  const out = new Bytes(16);
  const fields: [string, string][] = [
    [":status", "200"],
    [":method", "POST"],
    ["content-type", "application/grpc"],
    ["x-long", "v".repeat(300)],
    ["grpc-status", "0"],
  ];
  for (const [n, v] of fields) encodeField(out, n, v);
  const d = new HpackDecoder(4096, 65536);
  assertEquals(d.decode(out.buf.subarray(0, out.length)).fields, fields);
  assertEquals(d.tableSize, 0);
});

Deno.test("hpack: malformed blocks are compression errors", () => {
  const d = () => new HpackDecoder(4096, 65536);
  assertThrows(() => d().decode(hex("80")), HpackError); // index 0
  assertThrows(() => d().decode(hex("ff00")), HpackError); // past the table
  assertThrows(() => d().decode(hex("0f")), HpackError); // truncated integer
  assertThrows(() => d().decode(hex("400a 6375")), HpackError); // string past the block
  assertThrows(() => d().decode(hex("ffff ffff ff0f")), HpackError); // integer overflow
  // A size update above the advertised 4096, and one after a field.
  assertThrows(() => d().decode(hex("3fe2 1f")), HpackError);
  assertThrows(() => d().decode(hex("82 20")), HpackError);
  // Bad Huffman: padding of 8 ones (0xff after a complete code), and padding not all ones.
  assertThrows(() => d().decode(hex("0082 ff ff 00")), HpackError);
  assertThrows(() => huffmanDecode(hex("00"), 0, 1), HuffmanError);
});

Deno.test("hpack: a size update shrinks the table; a list past the limit is marked, not kept", () => {
  const d = new HpackDecoder(4096, 100);
  d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"));
  assertEquals(d.tableSize, 54);
  d.decode(hex("20"));
  assertEquals(d.tableSize, 0);
  // Three indexed copies of a 54-byte entry: past 100 bytes, yet the table stays in step.
  const big = d.decode(
    hex("3fe1 1f 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65 be be"),
  );
  assertEquals(big.tooLarge, true);
  assertEquals(big.fields, []);
  assertEquals(d.entries, [["custom-key", "custom-value"]]);
});

Deno.test("hpack: the encoder's table stays in step with a decoder over many blocks and a shrink", () => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder(4096, 1 << 20);
  const sizes: number[] = [];
  for (let i = 0; i < 200; i++) {
    if (i === 120) enc.setTableLimit(300);
    const fields: [string, string][] = [
      [":status", "200"],
      ["content-type", "application/grpc"],
      ["x-n", `v${i % 37}`],
      ["x-unique", `u${i}`],
      ["authorization", "secret"],
      ["x-big", "b".repeat(i % 3 === 0 ? 300 : 10)],
    ];
    const out = new Bytes(64);
    enc.begin(out);
    for (const [n, v] of fields) enc.field(out, n, v);
    sizes.push(out.length);
    assertEquals(dec.decode(out.buf.subarray(0, out.length)).fields, fields, `block ${i}`);
    assert(dec.tableSize <= (i >= 120 ? 300 : 4096));
  }
  // A repeated block is mostly one-byte indices.
  assert(sizes[1]! < sizes[0]!, `${sizes[1]} < ${sizes[0]}`);
  // Credentials are never indexed.
  assert(!dec.entries.some(([n]) => n === "authorization"));
});

Deno.test("hpack: every static pair with a value is sent as its one-byte index", () => {
  STATIC_TABLE.forEach(([n, v], i) => {
    if (v === "") return;
    const out = new Bytes(8);
    encodeField(out, n, v);
    assertEquals([...out.buf.subarray(0, out.length)], [0x80 | (i + 1)], `${n}: ${v}`);
  });
});
