/** WatchHub's bookkeeping: wake by index, expire by deadline, end all, let go. */
import assert from "node:assert/strict";
import { WatchHub } from "./watch_hub.ts";

const w = (name: string, after: number, deadline: number) => ({ name, after, deadline });

Deno.test("WatchHub.takePassed() takes the watches a new index passes, and only them", () => {
  const hub = new WatchHub<ReturnType<typeof w>>();
  const a = w("a", 5, 100), b = w("b", 5, 100), c = w("c", 7, 100);
  hub.add(a);
  hub.add(b);
  hub.add(c);
  assert.deepEqual(hub.takePassed(5).map((x) => x.name), []);
  assert.deepEqual(hub.takePassed(6).map((x) => x.name).sort(), ["a", "b"]);
  assert.equal(hub.size, 1);
  assert.equal(hub.delete(a), false, "a was answered already");
  assert.equal(hub.delete(c), true);
  assert.equal(hub.size, 0);
  assert.deepEqual(hub.takePassed(100), []);
});

Deno.test("WatchHub.takeExpired() takes watches at or past their deadline; takeAll() the rest", () => {
  const hub = new WatchHub<ReturnType<typeof w>>();
  hub.add(w("early", 1, 10));
  hub.add(w("late", 1, 50));
  hub.add(w("other", 2, 10));
  assert.deepEqual(hub.takeExpired(9), []);
  assert.deepEqual(hub.takeExpired(10).map((x) => x.name).sort(), ["early", "other"]);
  assert.equal(hub.size, 1);
  assert.deepEqual(hub.takeAll().map((x) => x.name), ["late"]);
  assert.equal(hub.size, 0);
});
