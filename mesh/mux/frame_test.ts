import { assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  FRAME_HEADER_BYTES,
  FrameType,
  MAX_FRAME_PAYLOAD_BYTES,
  MuxProtocolError,
  readFrameHeader,
  readWindowIncrement,
  writeFrameHeader,
} from "./frame.ts";

Deno.test("frame headers round-trip, including the largest ids and lengths", () => {
  const buf = new Uint8Array(32);
  for (
    const [type, stream, len] of [
      [FrameType.Data, 1, 0],
      [FrameType.Data, 0x7fff_ffff, MAX_FRAME_PAYLOAD_BYTES],
      [FrameType.Open, 3, 0],
      [FrameType.Fin, 0xffff_fffe, 0],
      [FrameType.Reset, 256, 0],
      [FrameType.Window, 9, 4],
      [FrameType.GoAway, 0, 0],
      [FrameType.Refused, 5, 0],
      [FrameType.Ping, 0, 8],
      [FrameType.Pong, 0, 8],
    ] as const
  ) {
    writeFrameHeader(buf, 5, type, stream, len);
    assertEquals(readFrameHeader(buf, 5, 5 + FRAME_HEADER_BYTES), { type, stream, length: len });
  }
});

Deno.test("a partial header is not a frame yet", () => {
  const buf = new Uint8Array(FRAME_HEADER_BYTES);
  writeFrameHeader(buf, 0, FrameType.Data, 1, 10);
  assertEquals(readFrameHeader(buf, 0, FRAME_HEADER_BYTES - 1), null);
});

Deno.test("malformed headers are protocol errors", () => {
  const buf = new Uint8Array(FRAME_HEADER_BYTES);
  const bad = (type: number, stream: number, len: number) => {
    writeFrameHeader(buf, 0, type as 0, stream, len);
    assertThrows(() => readFrameHeader(buf, 0, buf.length), MuxProtocolError);
  };
  bad(9, 0, 0); // unknown type
  bad(255, 1, 0);
  bad(FrameType.Data, 1, MAX_FRAME_PAYLOAD_BYTES + 1); // oversized
  bad(FrameType.Window, 1, 3); // window payload must be 4 bytes
  bad(FrameType.Open, 1, 1); // control frames carry no payload
  bad(FrameType.Reset, 1, 4);
  bad(FrameType.Refused, 1, 1);
  bad(FrameType.Data, 0, 1); // stream 0 is only for GoAway, Ping and Pong
  bad(FrameType.Open, 0, 0);
  bad(FrameType.Ping, 1, 8); // pings are on stream 0, with an 8-byte payload
  bad(FrameType.Ping, 0, 4);
  bad(FrameType.Pong, 0, 0);
});

Deno.test("window increments are read as unsigned 32-bit", () => {
  assertEquals(readWindowIncrement(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0), 0xffff_ffff);
  assertEquals(readWindowIncrement(new Uint8Array([0, 0, 0, 0, 1, 0]), 2), 256);
});
