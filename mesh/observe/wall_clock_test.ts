import { assert } from "../../tests/assert.ts";
import { wallNow } from "./wall_clock.ts";

Deno.test("wallNow() follows the wall clock and never runs backwards within a turn", async () => {
  const a = wallNow();
  assert(Math.abs(a - Date.now()) < 1000, `${a} is far from ${Date.now()}`);
  assert(wallNow() >= a);
  // A later turn reads the clock again.
  await new Promise((r) => setTimeout(r, 20));
  const b = wallNow();
  assert(b > a, `${b} did not move on from ${a}`);
  assert(Math.abs(b - Date.now()) < 1000);
});
