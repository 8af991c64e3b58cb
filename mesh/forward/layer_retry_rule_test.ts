import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { mayRetry, type TryFacts } from "./layer_retry_rule.ts";
import type { Outcome } from "./types.ts";

const base: TryFacts = {
  outcome: { kind: "reset" },
  replayable: true,
  idempotent: true,
  sentUpstream: true,
  bodyStreaming: false,
  draining: false,
  overallSpent: false,
};

const reset: Outcome = { kind: "reset" };
const connect: Outcome = { kind: "connect_failure" };
const timeout: Outcome = { kind: "timeout" };
const r503: Outcome = { kind: "response", status: 503 };
const r409: Outcome = { kind: "response", status: 409 };

const table: [string, Partial<TryFacts>, boolean][] = [
  ["a reset idempotent request with its body buffered", {}, true],
  ["a timeout of an idempotent request", { outcome: timeout }, true],
  ["a reset POST that reached the upstream", { idempotent: false }, false],
  ["a POST that never reached the upstream", { idempotent: false, sentUpstream: false }, true],
  ["a reset request whose body was not buffered", { replayable: false }, false],
  [
    "a refused connect, whatever the method and body",
    { outcome: connect, idempotent: false, replayable: false },
    true,
  ],
  ["any try once the forwarder drains", { outcome: connect, draining: true }, false],
  ["a failure after the overall timeout ran out", { overallSpent: true }, false],
  ["a refused connect after the overall timeout", { outcome: connect, overallSpent: true }, false],
  ["a 503 to an idempotent buffered request", { outcome: r503 }, true],
  ["a 503 whose overall timeout ran out (the policy weighs it)", {
    outcome: r503,
    overallSpent: true,
  }, true],
  ["a 503 to a POST", { outcome: r503, idempotent: false }, false],
  ["a 503 while the request body still streams", { outcome: r503, bodyStreaming: true }, false],
  ["a 503 to a request whose body was not buffered", { outcome: r503, replayable: false }, false],
  ["a 409 (responses below 500 reach the client)", { outcome: r409 }, false],
];

for (const [what, facts, want] of table) {
  Deno.test(`mayRetry() ${want ? "allows" : "refuses"} ${what}`, () => {
    assertEquals(mayRetry({ ...base, outcome: reset, ...facts }), want);
  });
}
