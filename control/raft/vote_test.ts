import { assertEquals } from "../../tests/assert.ts";
import { campaignsAhead, type RefusalView } from "./vote.ts";

const base: RefusalView = {
  reason: "log_behind",
  role: "follower",
  promotable: true,
  electionElapsed: 10,
  electionTicks: 10,
};

Deno.test("a follower ahead of a refused candidate campaigns once its leader is silent", () => {
  assertEquals(campaignsAhead(base), true);
  assertEquals(campaignsAhead({ ...base, electionElapsed: 14 }), true);
});

Deno.test("never while it still hears a leader, for another reason, or when it cannot lead", () => {
  assertEquals(campaignsAhead({ ...base, electionElapsed: 9 }), false);
  for (const reason of ["in_lease", "voted_other", "has_leader", "stale_term"] as const) {
    assertEquals(campaignsAhead({ ...base, reason }), false, reason);
  }
  assertEquals(campaignsAhead({ ...base, role: "pre_candidate" }), false);
  assertEquals(campaignsAhead({ ...base, role: "candidate" }), false);
  assertEquals(campaignsAhead({ ...base, role: "leader" }), false);
  assertEquals(campaignsAhead({ ...base, promotable: false }), false);
});
