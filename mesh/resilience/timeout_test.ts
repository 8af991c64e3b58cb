import assert from "node:assert/strict";
import { Deadline, formatDurationMs, TimeoutError } from "./timeout.ts";

Deno.test("formatDurationMs writes durations like the config does", () => {
  const table: [number, string][] = [[250, "250ms"], [2000, "2s"], [1500, "1.5s"], [
    120_000,
    "2m",
  ], [0, "0ms"]];
  for (const [ms, want] of table) assert.equal(formatDurationMs(ms), want);
});

Deno.test("Deadline bounds each try by the per-try timeout and what is left overall", () => {
  const d = new Deadline(1000, 2000, 500);
  assert.equal(d.tryTimeoutMs(1000), 500);
  assert.equal(d.tryTimeoutMs(2800), 200, "only 200ms of the overall 2s remain");
  assert.equal(d.remainingMs(3500), 0);
  assert.equal(d.expired(2999), false);
  assert.equal(d.expired(3000), true);
});

Deno.test("Deadline without limits never expires", () => {
  const d = new Deadline(0);
  assert.equal(d.tryTimeoutMs(1e12), Infinity);
  assert.equal(d.expired(1e12), false);
  assert.equal(new Deadline(0, 0, 0).tryTimeoutMs(5), Infinity, "0 means no limit");
});

Deno.test("timeoutError names the limit that bound the try", () => {
  const d = new Deadline(0, 2000, 500);
  const perTry = d.timeoutError(0);
  assert.ok(perTry instanceof TimeoutError);
  assert.equal(perTry.kind, "per_try");
  assert.equal(perTry.limitMs, 500);
  assert.match(perTry.message, /500ms/);
  const overall = d.timeoutError(1800);
  assert.equal(overall.kind, "overall");
  assert.equal(overall.limitMs, 2000);
  assert.match(overall.message, /after 2s/);
  assert.equal(overall.status, 504);
  assert.equal(new Deadline(0, undefined, 300).timeoutError(0).kind, "per_try");
});
