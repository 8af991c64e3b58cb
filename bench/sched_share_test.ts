import { assert, assertEquals } from "../tests/assert.ts";
import { machineTicks, readSched, schedShare, type ThreadSched } from "./sched_share.ts";

/** Equal to within a millionth (the shares are computed in floating point). */
function assertAlmostEquals(actual: number, expected: number): void {
  assert(Math.abs(actual - expected) < 1e-6, `${actual} is not ${expected}`);
}

const t = (name: string, runNs: number, waitNs: number): ThreadSched => ({ name, runNs, waitNs });

Deno.test("schedShare() splits the main thread's wall time and sums every thread on a CPU", () => {
  const before = new Map([[7, t("proxy", 1_000, 500)], [8, t("worker", 0, 0)]]);
  const after = new Map([[7, t("proxy", 601_000, 100_500)], [8, t("worker", 500_000, 0)]]);
  const s = schedShare(7, before, after, 1_000_000);
  assertAlmostEquals(s.mainOnCpu, 60);
  assertAlmostEquals(s.mainWaiting, 10);
  assertAlmostEquals(s.mainSleeping, 30);
  assertAlmostEquals(s.allOnCpu, 110);
  // A thread born during the round is left out rather than counted from zero.
  after.set(9, t("late", 9_000_000, 0));
  assertAlmostEquals(schedShare(7, before, after, 1_000_000).allOnCpu, 110);
  // A process that went away has no figures.
  assert(Number.isNaN(schedShare(7, before, new Map(), 1_000_000).mainOnCpu));
});

Deno.test("readSched() and machineTicks() read this process and machine on Linux", async () => {
  if (Deno.build.os !== "linux") return;
  const mine = await readSched(Deno.pid);
  const main = mine.get(Deno.pid);
  assert(main !== undefined, "the main thread is listed");
  assert(main.runNs > 0);
  const m = await machineTicks();
  assert(m.total >= m.idle && m.idle > 0);
  assertEquals((await readSched(2 ** 30)).size, 0, "a process that does not exist has no threads");
});
