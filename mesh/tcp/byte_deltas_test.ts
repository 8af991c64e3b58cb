import { assertEquals } from "../../tests/assert.ts";
import { TcpByteDeltas } from "./byte_deltas.ts";

Deno.test("TCP byte counters add what each proxy moved, even with two proxies of one service", () => {
  const d = new TcpByteDeltas();
  const added: [string, string, number][] = [];
  const add = (svc: string, dir: string, n: number) => added.push([svc, dir, n]);
  const old = {}, fresh = {};
  d.collect(old, "db", 100, 10, add);
  // A reload opened a new listener for db; the old one drains its connections meanwhile.
  d.collect(fresh, "db", 5, 1, add);
  d.collect(old, "db", 120, 10, add);
  d.collect(fresh, "db", 7, 1, add);
  const total = (dir: string) =>
    added.filter(([, x]) => x === dir).reduce((s, [, , n]) => s + n, 0);
  assertEquals(total("sent"), 127, "the two proxies' bytes, each counted once");
  assertEquals(total("received"), 11);
});
