import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import { ConfigError, parseResourceText } from "./loader.ts";
import { ResourceSchema, WritableResourceSchema } from "./resource_schema.ts";
import { unenforcedResourceParts } from "./unenforced.ts";

function issues(text: string): string[] {
  const e = assertThrows(() => parseResourceText(text, "r.yaml"), ConfigError);
  return e.issues.map((i) => `${i.line}: ${i.message}`);
}

Deno.test("apply refuses the retired circuit_breaker keys with their line", () => {
  const got = issues(
    "kind: Policy\nservice: ledger\ncircuit_breaker:\n  max_requests: 10\n  max_connections: 5\n" +
      "  max_pending: 2\n",
  );
  assertEquals(got.length, 2);
  assert(got[0]!.startsWith("5: max_connections is not enforced"), got[0]);
  assert(got[1]!.startsWith("6: max_pending is not enforced"), got[1]);
  // max_requests alone is fine.
  parseResourceText("kind: Policy\nservice: ledger\ncircuit_breaker: { max_requests: 10 }\n", "r");
});

Deno.test("a stored Policy that still carries them loads, and is warned about", () => {
  const old = { kind: "Policy", service: "ledger", circuit_breaker: { max_connections: 5 } };
  assert(!WritableResourceSchema.safeParse(old).success);
  const r = ResourceSchema.parse(old);
  assertEquals(unenforcedResourceParts([r]), ["Policy/ledger circuit_breaker.max_connections"]);
});

Deno.test("apply refuses bad Routes and RateLimits with their line", () => {
  const zero = issues(
    "kind: Route\nservice: ledger\nrules:\n  - backends:\n      - { version: v1, weight: 0 }\n",
  );
  assertEquals(zero.length, 1);
  assert(zero[0]!.includes("weights sum to 0"), zero[0]);
  const pct = issues(
    "kind: Route\nservice: ledger\nrules:\n  - backends: [{ version: v1 }]\n" +
      "    fault: { abort: { percent: 150, status: 503 } }\n",
  );
  assertEquals(pct.length, 1);
  assert(pct[0]!.startsWith("5: "), pct[0]);
  const rate = issues("kind: RateLimit\nservice: ledger\nrequests_per_second: -5\nburst: 10\n");
  assertEquals(rate.length, 1);
  assert(rate[0]!.startsWith("3: "), rate[0]);
  const scope = issues(
    "kind: RateLimit\nservice: ledger\nrequests_per_second: 5\nburst: 10\nscope: planet\n",
  );
  assert(scope[0]!.startsWith("5: "), scope[0]);
});

Deno.test("apply refuses a fault delay over the cap with its line; a stored one still loads", () => {
  const got = issues(
    "kind: Route\nservice: ledger\nrules:\n  - backends: [{ version: v1 }]\n" +
      "    fault: { delay: { percent: 10, fixed: 2h } }\n",
  );
  assertEquals(got.length, 1);
  assert(got[0]!.startsWith("5: ") && got[0]!.includes("at most 60s"), got[0]);
  parseResourceText(
    "kind: Route\nservice: ledger\nrules:\n  - backends: [{ version: v1 }]\n" +
      "    fault: { delay: { percent: 10, fixed: 60s } }\n",
    "r",
  );
  const old = {
    kind: "Route",
    service: "ledger",
    rules: [{ backends: [{ version: "v1" }], fault: { delay: { percent: 10, fixed: "2h" } } }],
  };
  assert(ResourceSchema.safeParse(old).success);
});
