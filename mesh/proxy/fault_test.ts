import { assert, assertEquals } from "../../tests/assert.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { compileFault, decideFault, MAX_FAULT_DELAY_MS } from "./fault.ts";

Deno.test("no fault section compiles to nothing", () => {
  assertEquals(compileFault(undefined), null);
  assertEquals(compileFault({}), null);
});

Deno.test("fault percentages hold within statistical bounds; an abort wins over a delay", () => {
  const f = compileFault({
    delay: { percent: 20, fixed: 100 },
    abort: { percent: 10, status: 503 },
  })!;
  const random = seededRandom(11);
  const n = 20_000;
  let aborts = 0, delays = 0;
  for (let i = 0; i < n; i++) {
    const a = decideFault(f, random);
    if (a.kind === "abort") {
      assertEquals(a.status, 503);
      aborts++;
    } else if (a.kind === "delay") {
      assertEquals(a.ms, 100);
      delays++;
    }
  }
  // Aborts: 10% = 2000 (sd 42). Delays: 20% of the 90% not aborted = 3600 (sd 57).
  assert(Math.abs(aborts - 2000) < 170, `aborts ${aborts}`);
  assert(Math.abs(delays - 3600) < 230, `delays ${delays}`);
});

Deno.test("0% never and 100% always", () => {
  const never = compileFault({ abort: { percent: 0, status: 500 } })!;
  const always = compileFault({ delay: { percent: 100, fixed: 5 } })!;
  const random = seededRandom(1);
  for (let i = 0; i < 1000; i++) {
    assertEquals(decideFault(never, random).kind, "none");
    assertEquals(decideFault(always, random), { kind: "delay", ms: 5 });
  }
});

Deno.test("a stored delay over the cap waits the cap", () => {
  const f = compileFault({ delay: { percent: 100, fixed: 7_200_000 } })!;
  assertEquals(f.delayMs, MAX_FAULT_DELAY_MS);
});
