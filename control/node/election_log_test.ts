import { assertEquals } from "../../tests/assert.ts";
import { nodeId } from "../../common/mod.ts";
import { changesVote } from "./election_log.ts";

Deno.test("only a new term or vote counts as a vote change, not a commit advance", () => {
  const a = nodeId("cp-1");
  const prev = { term: 3, vote: a, commit: 10 };
  assertEquals(changesVote(prev, { term: 3, vote: a, commit: 12 }), false);
  assertEquals(changesVote(prev, { term: 4, vote: null, commit: 10 }), true);
  assertEquals(changesVote(prev, { term: 3, vote: nodeId("cp-2"), commit: 10 }), true);
});
