/**
 * What each part of the code costs an isolate: imports the given modules one after another in
 * this process and prints the resident memory (and V8 heap) each adds. The order matters (a
 * module's shared dependencies count where they are first loaded).
 *
 * `deno run -A --v8-flags=--no-memory-reducer bench/module_cost.ts common/tls/mod.ts zod ...`
 * (paths relative to the repository, or bare specifiers of deno.json's imports). At the end it
 * prints what the whole process's RSS is made of (anonymous memory, pages of the `deno`
 * executable, malloc, the rest) and V8's committed heap: per-module deltas are noisy, since a
 * young generation grown by one import's allocations counts against it, the totals are not.
 * @module
 */
import { mb, processMemory, smapsByMapping } from "./apps/proc_memory.ts";

const ROOT = new URL("../", import.meta.url);

/** Imports `specs` in order; returns each one's RSS and heap growth, KiB. */
export async function moduleCosts(
  specs: string[],
): Promise<{ spec: string; rssKiB: number; heapKiB: number }[]> {
  const settle = () => new Promise((r) => setTimeout(r, 700));
  const heap = () => Deno.memoryUsage().heapUsed / 1024;
  await settle();
  let rss = (await processMemory(Deno.pid)).rss;
  let used = heap();
  const out = [{ spec: "(deno itself)", rssKiB: rss, heapKiB: used }];
  for (const spec of specs) {
    await import(/\.tsx?$/.test(spec) ? new URL(spec, ROOT).href : spec);
    await settle();
    const now = (await processMemory(Deno.pid)).rss;
    out.push({ spec, rssKiB: now - rss, heapKiB: heap() - used });
    rss = now;
    used = heap();
  }
  return out;
}

if (import.meta.main) {
  for (const c of await moduleCosts(Deno.args)) {
    console.log(`${c.spec.padEnd(36)} RSS +${mb(c.rssKiB).padStart(7)}  heap +${mb(c.heapKiB)}`);
  }
  const exe = "/" + (Deno.execPath().split("/").pop() ?? "deno");
  const split = smapsByMapping(await Deno.readTextFile("/proc/self/smaps"), exe);
  const total = (await processMemory(Deno.pid)).rss;
  console.log(
    `total RSS ${mb(total)}: anonymous ${mb(split.anon)}, ${exe.slice(1)} pages ${
      mb(split.binary)
    }, malloc ${mb(split.malloc)}, other ${mb(split.other)}; V8 heap committed ${
      mb(Deno.memoryUsage().heapTotal / 1024)
    }`,
  );
}
