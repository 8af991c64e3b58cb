import { assertEquals } from "../../tests/assert.ts";
import { IdleSweeper } from "./idle.ts";

Deno.test("IdleSweeper ends entries silent for the whole timeout, once each", () => {
  let now = 0;
  const s = new IdleSweeper({ idleMs: 100, now: () => now, timer: false });
  const ended: string[] = [];
  const a = s.watch(() => ended.push("a"));
  const b = s.watch(() => ended.push("b"));
  now = 60;
  b.touch();
  now = 99;
  s.sweep();
  assertEquals(ended, [], "nothing is idle for the whole timeout yet");
  now = 100;
  s.sweep();
  assertEquals(ended, ["a"]);
  now = 160;
  s.sweep();
  s.sweep();
  assertEquals(ended, ["a", "b"], "b idle since 60; each ends once");
  assertEquals(s.size, 0);
  a.stop(); // Stopping an ended entry is harmless.
});

Deno.test("IdleSweeper: stopped entries and a zero timeout never fire", () => {
  let now = 0;
  const s = new IdleSweeper({ idleMs: 100, now: () => now, timer: false });
  const ended: string[] = [];
  s.watch(() => ended.push("a")).stop();
  now = 1_000;
  s.sweep();
  assertEquals(ended, []);
  const off = new IdleSweeper({ idleMs: 0, now: () => now, timer: false });
  off.watch(() => ended.push("off"));
  now = 1e9;
  off.sweep();
  assertEquals(ended, []);
  assertEquals(off.size, 0);
});

Deno.test("IdleSweeper: a throwing onIdle does not stop the sweep", () => {
  let now = 0;
  const s = new IdleSweeper({ idleMs: 10, now: () => now, timer: false });
  const ended: string[] = [];
  s.watch(() => {
    throw new Error("already closed");
  });
  s.watch(() => ended.push("second"));
  now = 10;
  s.sweep();
  assertEquals(ended, ["second"]);
});

Deno.test("IdleSweeper runs its timer only while it watches something", () => {
  const s = new IdleSweeper({ idleMs: 60_000 });
  const e = s.watch(() => {});
  e.stop();
  // No timer left behind: the test's op sanitizer would fail on a live interval.
  const e2 = s.watch(() => {});
  s.close();
  e2.stop();
});
