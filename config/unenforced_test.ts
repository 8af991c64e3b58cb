import { assertEquals } from "../tests/assert.ts";
import { ResourceSchema } from "./mod.ts";
import { unenforcedResourceParts } from "./unenforced.ts";

Deno.test("unenforcedResourceParts() names retired Policy keys, not ExternalServices, RateLimits, mirrors or faults", () => {
  const rs = [
    { kind: "Policy", service: "ledger" },
    { kind: "RateLimit", service: "ledger", requests_per_second: 500, burst: 1000 },
    { kind: "ExternalService", name: "stripe", hosts: ["api.stripe.com:443"] },
    {
      kind: "Route",
      service: "ledger",
      rules: [
        { backends: [{ version: "v2" }] },
        {
          backends: [{ version: "v1", weight: 95 }, { version: "v2", weight: 5 }],
          mirror: { version: "v3", percent: 10 },
          fault: { abort: { percent: 1, status: 503 } },
        },
      ],
    },
    { kind: "Authorization", service: "ledger", allow: [{ from: ["payments"] }] },
    { kind: "Policy", service: "billing", circuit_breaker: { max_pending: 5 } },
  ].map((r) => ResourceSchema.parse(r));
  assertEquals(unenforcedResourceParts(rs), [
    "Policy/billing circuit_breaker.max_pending",
  ]);
  assertEquals(unenforcedResourceParts(rs.slice(0, 1)), []);
});

Deno.test("unenforcedResourceParts() names a RateLimit for an ExternalService", () => {
  const rs = [
    { kind: "ExternalService", name: "stripe", hosts: ["api.stripe.com:443"] },
    { kind: "RateLimit", service: "stripe", requests_per_second: 5, burst: 5 },
    { kind: "RateLimit", service: "ledger", requests_per_second: 5, burst: 5 },
  ].map((r) => ResourceSchema.parse(r));
  assertEquals(unenforcedResourceParts(rs), ["RateLimit/stripe (for an ExternalService)"]);
  assertEquals(unenforcedResourceParts(rs.slice(1)), [], "alone, it may be a mesh service's");
});
