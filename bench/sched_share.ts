/**
 * Where a benchmark's processes spent the wall time of a round, from the kernel's per-thread
 * scheduler counters (`/proc/PID/task/TID/schedstat`: time on a CPU, time runnable but waiting
 * for one) and the machine's idle time (`/proc/stat`). A process whose main thread sleeps much
 * of a round waits on its peers (the pipeline, not its CPU, limits the rate); one that mostly
 * waits for a CPU is held back by the machine. Linux only; elsewhere every figure is NaN.
 * @module
 */

/** One thread's counters, in nanoseconds. */
export interface ThreadSched {
  /** Thread name (`comm`). */
  name: string;
  /** Time on a CPU. */
  runNs: number;
  /** Time runnable, waiting for a CPU. */
  waitNs: number;
}

/** A process's share of one round, in percent of the round's wall time. */
export interface SchedShare {
  /** Its main thread on a CPU. */
  mainOnCpu: number;
  /** Its main thread runnable but waiting for a CPU. */
  mainWaiting: number;
  /** Its main thread asleep (no work to do). */
  mainSleeping: number;
  /** All its threads on a CPU together (over 100 with several busy threads). */
  allOnCpu: number;
}

/** Reads the counters of every thread of `pid`, keyed by thread id (empty when gone). */
export async function readSched(pid: number): Promise<Map<number, ThreadSched>> {
  const out = new Map<number, ThreadSched>();
  try {
    for await (const e of Deno.readDir(`/proc/${pid}/task`)) {
      const tid = Number(e.name);
      try {
        const [run, wait] = (await Deno.readTextFile(`/proc/${pid}/task/${tid}/schedstat`))
          .trim().split(/\s+/).map(Number);
        const name = (await Deno.readTextFile(`/proc/${pid}/task/${tid}/comm`)).trim();
        out.set(tid, { name, runNs: run ?? NaN, waitNs: wait ?? NaN });
      } catch {
        // The thread ended meanwhile.
      }
    }
  } catch {
    // No /proc (not Linux) or the process is gone.
  }
  return out;
}

/** The share of `wallNs` process `pid` spent as counted from `before` to `after` (pure). */
export function schedShare(
  pid: number,
  before: Map<number, ThreadSched>,
  after: Map<number, ThreadSched>,
  wallNs: number,
): SchedShare {
  const pct = (ns: number) => (100 * ns) / wallNs;
  const delta = (tid: number) => {
    const a = before.get(tid), b = after.get(tid);
    return a === undefined || b === undefined
      ? { run: NaN, wait: NaN }
      : { run: b.runNs - a.runNs, wait: b.waitNs - a.waitNs };
  };
  let all = 0;
  for (const tid of after.keys()) {
    const d = delta(tid);
    if (Number.isFinite(d.run)) all += d.run;
  }
  // The main thread's id is the process id.
  const m = delta(pid);
  return {
    mainOnCpu: pct(m.run),
    mainWaiting: pct(m.wait),
    mainSleeping: 100 - pct(m.run) - pct(m.wait),
    allOnCpu: after.size === 0 ? NaN : pct(all),
  };
}

/** Idle and total jiffies of the whole machine so far (`/proc/stat`), or NaNs. */
export async function machineTicks(): Promise<{ idle: number; total: number }> {
  try {
    const line = (await Deno.readTextFile("/proc/stat")).split("\n", 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    return { idle: (v[3] ?? 0) + (v[4] ?? 0), total: v.reduce((a, b) => a + b, 0) };
  } catch {
    return { idle: NaN, total: NaN };
  }
}
