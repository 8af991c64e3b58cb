import assert from "node:assert/strict";
import { backoffDelayMs } from "./backoff.ts";

const opts = { baseMs: 100, maxMs: 1000 };

Deno.test("backoffDelayMs() doubles the ceiling per attempt up to maxMs", () => {
  const top = (a: number) => backoffDelayMs(a, opts, () => 1);
  assert.deepStrictEqual([0, 1, 2, 3, 4, 10, 500].map(top), [100, 200, 400, 800, 1000, 1000, 1000]);
});

Deno.test("backoffDelayMs() jitters within the upper half of the ceiling", () => {
  assert.deepStrictEqual(backoffDelayMs(2, opts, () => 0), 200);
  assert.deepStrictEqual(backoffDelayMs(2, opts, () => 0.5), 300);
  // Out-of-range randomness is clamped rather than producing negative or huge delays.
  assert.deepStrictEqual(backoffDelayMs(2, opts, () => -3), 200);
  assert.deepStrictEqual(backoffDelayMs(2, opts, () => 7), 400);
});
