import { assert } from "../tests/assert.ts";
import { abortableSleep } from "./sleep.ts";

Deno.test("abortableSleep() ends early when its signal aborts", async () => {
  const ac = new AbortController();
  const p = abortableSleep(60_000, ac.signal);
  ac.abort();
  await p; // would hang the test (and leak a timer) if abort were ignored
  assert(ac.signal.aborted);
  await abortableSleep(1, new AbortController().signal);
});
