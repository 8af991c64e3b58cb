import { assertEquals } from "../../tests/assert.ts";
import { Policy as PolicySchema } from "../../config/resource_schema.ts";
import { defaultPolicy, localAppPolicy } from "./policy_defaults.ts";
import { effectivePolicy } from "./destination_policy.ts";

Deno.test("the written-out default Policy is what the schema fills in", () => {
  const parsed = PolicySchema.parse({
    kind: "Policy",
    service: "ledger",
    retries: {},
    circuit_breaker: {},
    outlier_detection: {},
  });
  assertEquals(defaultPolicy("ledger"), parsed);
  assertEquals(effectivePolicy("ledger"), parsed);
});

Deno.test("a Policy without its optional sections gets the schema's defaults for them", () => {
  const bare = PolicySchema.parse({ kind: "Policy", service: "ledger", timeout: "2s" });
  const full = PolicySchema.parse({
    kind: "Policy",
    service: "ledger",
    timeout: "2s",
    retries: {},
    circuit_breaker: {},
    outlier_detection: {},
  });
  assertEquals(effectivePolicy("ledger", bare), full);
});

Deno.test("the local app's policy is the schema's parse of one try, round robin, no ejection", () => {
  const parsed = PolicySchema.parse({
    kind: "Policy",
    service: "app",
    load_balancer: { algorithm: "round_robin" },
    retries: { attempts: 1 },
    outlier_detection: { max_ejection_percent: 0 },
    circuit_breaker: {},
  });
  assertEquals(localAppPolicy("app"), parsed);
});
