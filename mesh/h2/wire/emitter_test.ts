import { assertEquals } from "../../../tests/assert.ts";
import { Emitter } from "./emitter.ts";

Deno.test("Emitter: order, once, off and growth past its first slots", () => {
  const e = new Emitter();
  const seen: string[] = [];
  const fns = Array.from({ length: 10 }, (_, i) => (a: unknown, b: unknown) => {
    seen.push(`${i}:${a}:${b}`);
  });
  for (let i = 0; i < 10; i++) {
    if (i % 3 === 0) e.once("x", fns[i]!);
    else e.on(i % 2 === 0 ? "x" : "y", fns[i]!);
  }
  e.off("y", fns[1]!);
  assertEquals(e.listenerCount("x"), 7);
  assertEquals(e.listenerCount("y"), 2);
  assertEquals(e.emit("x", 1, 2), true);
  assertEquals(seen, ["0:1:2", "2:1:2", "3:1:2", "4:1:2", "6:1:2", "8:1:2", "9:1:2"]);
  seen.length = 0;
  // The once ones are gone; the others stay, in order.
  e.emit("x", "a");
  assertEquals(seen, ["2:a:undefined", "4:a:undefined", "8:a:undefined"]);
  seen.length = 0;
  e.emit("y");
  assertEquals(seen, ["5:undefined:undefined", "7:undefined:undefined"]);
  assertEquals(e.emit("z"), false);
});

Deno.test("Emitter: a single once listener is removed before it runs, and may add another", () => {
  const e = new Emitter();
  const seen: number[] = [];
  e.once("x", () => {
    seen.push(1);
    e.once("x", () => seen.push(2));
  });
  e.emit("x");
  e.emit("x");
  e.emit("x");
  assertEquals(seen, [1, 2]);
  assertEquals(e.listenerCount("x"), 0);
});
