import { assertEquals } from "../tests/assert.ts";
import { ChunkQueue } from "./chunk_queue.ts";

Deno.test("ChunkQueue reads across chunk boundaries in order and counts what is left", () => {
  const q = new ChunkQueue();
  assertEquals(q.readInto(new Uint8Array(4)), 0);
  q.push(new Uint8Array([1, 2, 3]));
  q.push(new Uint8Array([4, 5]));
  assertEquals(q.size, 5);
  const p = new Uint8Array(2);
  assertEquals(q.readInto(p), 2);
  assertEquals([...p], [1, 2]);
  assertEquals(q.size, 3);
  const r = new Uint8Array(8);
  assertEquals(q.readInto(r), 1, "one read never spans two chunks");
  assertEquals(r[0], 3);
  assertEquals(q.readInto(r), 2);
  assertEquals([...r.subarray(0, 2)], [4, 5]);
  assertEquals([q.size, q.empty], [0, true]);
});

Deno.test("ChunkQueue.drain hands the unread rest over in order and empties the queue", () => {
  const q = new ChunkQueue();
  q.push(new Uint8Array([1, 2]));
  q.push(new Uint8Array([3]));
  q.readInto(new Uint8Array(1));
  const got: number[][] = [];
  q.drain((c) => got.push([...c]));
  assertEquals(got, [[2], [3]]);
  assertEquals([q.size, q.empty], [0, true]);
  q.push(new Uint8Array([9]));
  q.clear();
  assertEquals([q.size, q.empty], [0, true]);
});
