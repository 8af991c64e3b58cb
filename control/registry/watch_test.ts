import assert from "node:assert/strict";
import { IndexWatcher, TooManyWatchersError } from "./watch.ts";

Deno.test("IndexWatcher.wait resolves at once when the index already passed", async () => {
  const w = new IndexWatcher(5);
  assert.equal(await w.wait(4, 60_000), 5);
});

Deno.test("IndexWatcher.wait wakes on notify past the index, not at or below it", async () => {
  const w = new IndexWatcher(5);
  let woke = 0;
  const p = w.wait(6, 60_000).then((i) => (woke = i));
  w.notify(6);
  w.notify(3);
  await Promise.resolve();
  assert.equal(woke, 0);
  assert.equal(w.waiting, 1);
  w.notify(7);
  assert.equal(await p, 7);
  assert.equal(w.waiting, 0);
});

Deno.test("IndexWatcher.wait returns the unchanged index on timeout and abort", async () => {
  const w = new IndexWatcher(2);
  assert.equal(await w.wait(2, 5), 2);
  const ac = new AbortController();
  const p = w.wait(2, 60_000, ac.signal);
  ac.abort();
  assert.equal(await p, 2);
  assert.equal(w.waiting, 0);
});

Deno.test("IndexWatcher bounds the number of waiters", async () => {
  const w = new IndexWatcher(0, 1);
  const p = w.wait(0, 60_000);
  await assert.rejects(() => w.wait(0, 60_000), TooManyWatchersError);
  w.notify(1);
  assert.equal(await p, 1);
});
