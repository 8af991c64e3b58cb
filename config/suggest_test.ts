import { assertEquals } from "../tests/assert.ts";
import { didYouMean, editDistance } from "./suggest.ts";

Deno.test("editDistance() counts insertions, deletions, substitutions and transpositions", () => {
  const rows: [string, string, number][] = [
    ["", "", 0],
    ["abc", "abc", 0],
    ["abc", "ab", 1],
    ["ab", "abc", 1],
    ["abc", "abd", 1],
    ["burts", "burst", 1],
    ["kitten", "sitting", 3],
  ];
  for (const [a, b, d] of rows) assertEquals(editDistance(a, b), d, `${a} ~ ${b}`);
});

Deno.test("didYouMean() suggests close words and nothing for far ones", () => {
  assertEquals(didYouMean("contrl", ["control", "proxy", "ctl"]), "control");
  assertEquals(didYouMean("raft_tunning", ["raft", "raft_tuning"]), "raft_tuning");
  assertEquals(didYouMean("zzz", ["api", "raft"]), null);
  assertEquals(didYouMean("x", []), null);
});
