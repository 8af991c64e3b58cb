import assert from "node:assert/strict";
import {
  type DecodeResult,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FrameDecoder,
  writeFrameHeader,
} from "./frame.ts";
import { seededRandom } from "../../tests/seeded_random.ts";

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Feeds `chunks` and collects frames; returns the first error instead if one occurs. */
function decodeAll(dec: FrameDecoder, chunks: Uint8Array[]): Uint8Array[] | DecodeResult {
  const frames: Uint8Array[] = [];
  for (const c of chunks) {
    dec.push(c);
    for (;;) {
      const r = dec.next();
      if (r.kind === "need_more") break;
      if (r.kind === "error") return r;
      frames.push(r.frame);
    }
  }
  return frames;
}

/** Compares frame lists with a short message; a full diff of large arrays is too slow to print. */
function assertFramesEqual(got: Uint8Array[], want: Uint8Array[]): void {
  assert.equal(got.length, want.length, `frame count ${got.length}, want ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    assert.equal(g.length, w.length, `frame ${i}: length ${g.length}, want ${w.length}`);
    const at = g.findIndex((b, j) => b !== w[j]);
    assert.equal(at, -1, `frame ${i}: first differing byte at ${at}`);
  }
}

function payload(len: number, seed: number): Uint8Array {
  const p = new Uint8Array(len);
  for (let i = 0; i < len; i++) p[i] = (i * 31 + seed) & 0xff;
  return p;
}

Deno.test("encodeFrame() prefixes the payload with its big-endian u32 length", () => {
  const f = encodeFrame(new Uint8Array([9, 8, 7]));
  assert.deepStrictEqual([...f], [0, 0, 0, 3, 9, 8, 7]);
  const h = new Uint8Array(4);
  writeFrameHeader(h, 0, 0x01020304);
  assert.deepStrictEqual([...h], [1, 2, 3, 4]);
  assert.throws(() => writeFrameHeader(h, 0, 2 ** 32), RangeError);
});

Deno.test("FrameDecoder decodes many frames delivered in one chunk", () => {
  const frames = [payload(1, 1), payload(100, 2), payload(3, 3)];
  const got = decodeAll(new FrameDecoder(), [concat(frames.map(encodeFrame))]);
  assert.deepStrictEqual(got, frames);
});

Deno.test("FrameDecoder decodes a frame split byte by byte", () => {
  const p = payload(1000, 7);
  const bytes = encodeFrame(p);
  const chunks = [...bytes].map((b) => new Uint8Array([b]));
  const dec = new FrameDecoder();
  const got = decodeAll(dec, chunks);
  assert.deepStrictEqual(got, [p]);
  assert.deepStrictEqual(dec.midFrame, false);
  assert.deepStrictEqual(dec.bufferedBytes, 0);
});

Deno.test("FrameDecoder returns owned copies, so the caller may reuse its read buffer", () => {
  const buf = concat([encodeFrame(payload(5, 1)), encodeFrame(payload(6, 2)).subarray(0, 3)]);
  const dec = new FrameDecoder();
  dec.push(buf);
  const r = dec.next();
  assert(r.kind === "frame");
  assert.deepStrictEqual(dec.next().kind, "need_more");
  buf.fill(0xee);
  assert.deepStrictEqual(r.frame, payload(5, 1));
  dec.push(encodeFrame(payload(6, 2)).subarray(3));
  const r2 = dec.next();
  assert(r2.kind === "frame");
  assert.deepStrictEqual(r2.frame, payload(6, 2));
});

Deno.test("FrameDecoder rejects an oversize length as soon as the header is read", () => {
  const dec = new FrameDecoder({ maxFrameBytes: 1024 });
  dec.push(new Uint8Array([0, 0, 4, 1])); // 1025
  const r = dec.next();
  assert.deepStrictEqual(r, {
    kind: "error",
    reason: "oversize",
    length: 1025,
    maxFrameBytes: 1024,
  });
  // Sticky: the stream is unusable after an error.
  assert.deepStrictEqual(dec.next(), r);
  assert.deepStrictEqual(dec.bufferedBytes, 0);
});

Deno.test("FrameDecoder never buffers more than it was given, whatever length is claimed", () => {
  // 0xFFFFFFFF with the default limit is oversize; at exactly the limit it is accepted but
  // must not be allocated up front.
  const huge = new FrameDecoder();
  huge.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
  const r = huge.next();
  assert(r.kind === "error" && r.reason === "oversize" && r.length === 0xffffffff);

  const dec = new FrameDecoder();
  const h = new Uint8Array(4 + 10);
  writeFrameHeader(h, 0, DEFAULT_MAX_FRAME_BYTES);
  dec.push(h);
  assert.deepStrictEqual(dec.next().kind, "need_more");
  assert.deepStrictEqual(dec.bufferedBytes, 10);
  assert(dec.midFrame);
});

Deno.test("FrameDecoder rejects a zero length prefix", () => {
  const dec = new FrameDecoder();
  dec.push(new Uint8Array([0, 0, 0, 0, 1]));
  const r = dec.next();
  assert(r.kind === "error");
  assert.deepStrictEqual(r.reason, "zero_length");
});

Deno.test("FrameDecoder applies a changed maxFrameBytes to the next header only", () => {
  const dec = new FrameDecoder({ maxFrameBytes: 8 });
  dec.push(concat([encodeFrame(payload(8, 1)), encodeFrame(payload(100, 2))]));
  const a = dec.next();
  assert(a.kind === "frame");
  dec.maxFrameBytes = 100;
  const b = dec.next();
  assert(b.kind === "frame");
  assert.deepStrictEqual(b.frame, payload(100, 2));
});

Deno.test("FrameDecoder.push refuses a new chunk before the previous one is drained", () => {
  const dec = new FrameDecoder();
  dec.push(concat([encodeFrame(payload(2, 1)), encodeFrame(payload(2, 2))]));
  dec.next();
  assert.throws(() => dec.push(new Uint8Array(1)), /not drained/);
});

for (const seed of [1, 2, 3, 42, 1234, 99991]) {
  Deno.test(`FrameDecoder reassembles random frames under random chunkings (seed ${seed})`, () => {
    const rand = seededRandom(seed);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 200; i++) {
      // Mostly small frames, sometimes large ones, to exercise both the fast and slow paths.
      const len = rand() < 0.9 ? 1 + Math.floor(rand() * 64) : 1 + Math.floor(rand() * 20_000);
      frames.push(payload(len, i));
    }
    const stream = concat(frames.map(encodeFrame));
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < stream.length;) {
      const r = rand();
      const n = r < 0.3 ? 1 : r < 0.6 ? 1 + Math.floor(rand() * 8) : 1 + Math.floor(rand() * 9000);
      chunks.push(stream.slice(at, at + n));
      at += n;
    }
    // Like a socket reader, every chunk lands in the same reused buffer, which is scribbled
    // over after each drain: any frame still aliasing it would be corrupted.
    const scratch = new Uint8Array(9000);
    const dec = new FrameDecoder();
    const got: Uint8Array[] = [];
    for (const c of chunks) {
      scratch.set(c);
      dec.push(scratch.subarray(0, c.length));
      for (;;) {
        const r = dec.next();
        if (r.kind === "need_more") break;
        assert.ok(r.kind === "frame", `unexpected ${r.kind}`);
        got.push(r.frame);
      }
      scratch.fill(0xa5);
    }
    assertFramesEqual(got, frames);
    assert.deepStrictEqual(dec.midFrame, false);
  });
}
