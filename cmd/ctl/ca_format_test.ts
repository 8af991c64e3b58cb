import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { formatCaStatus } from "./ca_format.ts";

Deno.test("formatCaStatus() shows the phase, who is missing and a pause", () => {
  assertEquals(
    formatCaStatus({ rotation: null, roots: ["aa"], missing: [], members: 3 }),
    "no rotation in progress (active root aa)",
  );
  assertMatch(
    formatCaStatus({ rotation: null, roots: ["aa", "bb"], missing: [], members: 3 }),
    /a rotation run by hand; `skein ctl ca finish` ends it/,
  );
  const text = formatCaStatus({
    rotation: {
      phase: "trust",
      newRootId: "bb",
      oldRootId: "aa",
      trigger: "policy",
      startedAt: 0,
      phaseSince: 0,
      paused: "2 member(s) did not confirm the new root within 3600s: svc/a/1, svc/b/2",
    },
    roots: ["aa", "bb"],
    missing: ["svc/a/1", "svc/b/2"],
    members: 5,
  });
  assertMatch(text, /rotation aa -> bb \(started by policy/);
  assertMatch(text, /phase: trust since 1970-01-01T00:00:00.000Z \(waiting until every member/);
  assertMatch(text, /caught up: 3 of 5 member\(s\)/);
  assertMatch(text, /PAUSED: 2 member\(s\)/);
  assertMatch(text, /missing: svc\/a\/1, svc\/b\/2$/);
});
