import assert from "node:assert/strict";
import { FrameQueue } from "./frame_queue.ts";

const f = (n: number, tag = 0) => new Uint8Array(n).fill(tag);

Deno.test("FrameQueue keeps FIFO order across wrap-around", () => {
  const q = new FrameQueue(3, 1000);
  const out: number[] = [];
  for (let i = 0; i < 10; i++) {
    assert.deepStrictEqual(q.push(f(1, i)), true);
    if (q.size === 3 || i === 9) {
      while (q.size > 0) {
        out.push(q.peek(0)![0]!);
        q.drop(1);
      }
    }
  }
  assert.deepStrictEqual(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test("FrameQueue refuses frames beyond its frame and byte bounds", () => {
  const q = new FrameQueue(2, 10);
  assert.deepStrictEqual(q.push(f(4)), true);
  assert.deepStrictEqual(q.push(f(7)), false); // 11 bytes
  assert.deepStrictEqual(q.push(f(6)), true);
  assert.deepStrictEqual(q.push(f(1)), false); // 3 frames
  assert.deepStrictEqual([q.size, q.bytes], [2, 10]);
  q.drop(1);
  assert.deepStrictEqual([q.size, q.bytes], [1, 6]);
  assert.deepStrictEqual(q.peek(0)!.length, 6);
  assert.deepStrictEqual(q.peek(1), undefined);
});

Deno.test("FrameQueue accepts one oversized frame when empty, so it can still be sent", () => {
  const q = new FrameQueue(4, 10);
  assert.deepStrictEqual(q.push(f(50)), true);
  assert.deepStrictEqual(q.push(f(1)), false);
  assert.deepStrictEqual(q.clear(), 1);
  assert.deepStrictEqual([q.size, q.bytes], [0, 0]);
});

Deno.test("FrameQueue rejects a non-positive capacity", () => {
  assert.throws(() => new FrameQueue(0, 10), RangeError);
});

Deno.test("FrameQueue.dropQueuedBefore() drops only frames older than the cutoff", () => {
  const q = new FrameQueue(8, 1024);
  q.push(new Uint8Array([1]), 100);
  q.push(new Uint8Array([2]), 200);
  q.push(new Uint8Array([3]), 300);
  assert.equal(q.dropQueuedBefore(250), 2);
  assert.equal(q.size, 1);
  assert.deepEqual(q.peek(0), new Uint8Array([3]));
  assert.equal(q.dropQueuedBefore(250), 0);
  assert.equal(q.bytes, 1);
});
