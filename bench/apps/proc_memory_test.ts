import { assertEquals } from "../../tests/assert.ts";
import { parseSmapsRollup, processMemory } from "./proc_memory.ts";

Deno.test("parseSmapsRollup reads Rss and Pss, and refuses text without them", () => {
  const text = [
    "00400000-7ffd4e1f5000 ---p 00000000 00:00 0                          [rollup]",
    "Rss:               40960 kB",
    "Pss:               12345 kB",
    "Pss_Anon:          10000 kB",
    "",
  ].join("\n");
  assertEquals(parseSmapsRollup(text), { rss: 40960, pss: 12345 });
  assertEquals(parseSmapsRollup("Rss: 1 kB\n"), null);
});

Deno.test("processMemory reads this process's own figures", async () => {
  const m = await processMemory(Deno.pid);
  assertEquals(m.rss > 0 && m.pss > 0 && m.pss <= m.rss, true);
});
