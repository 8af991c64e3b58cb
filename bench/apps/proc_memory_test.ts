import { assertEquals } from "../../tests/assert.ts";
import { parseSmapsRollup, processMemory, smapsByMapping } from "./proc_memory.ts";

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

Deno.test("smapsByMapping sums resident memory by anonymous, executable, malloc and other", () => {
  const text = [
    "55d0a0000000-55d0a8000000 r-xp 00000000 08:01 123    /usr/local/bin/deno",
    "Size:             131072 kB",
    "Rss:               30000 kB",
    "55d0b0000000-55d0b1000000 rw-p 00000000 00:00 0      [heap]",
    "Rss:                2000 kB",
    "7f0000000000-7f0001000000 rw-p 00000000 00:00 0 ",
    "Rss:                5000 kB",
    "7f0002000000-7f0002100000 rw-p 00000000 00:00 0",
    "Rss:                 100 kB",
    "7f0003000000-7f0003100000 r-xp 00000000 08:01 9      /usr/lib/x86_64-linux-gnu/libc.so.6",
    "Rss:                1500 kB",
    "7ffd0000000-7ffd0021000 rw-p 00000000 00:00 0        [stack]",
    "Rss:                  40 kB",
    "",
  ].join("\n");
  assertEquals(smapsByMapping(text, "/deno"), {
    anon: 5100,
    binary: 30000,
    malloc: 2000,
    other: 1540,
  });
});
