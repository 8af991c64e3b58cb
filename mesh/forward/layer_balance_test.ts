import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { excludeTried, pickEndpoint } from "./layer_balance.ts";
import { Exchange } from "./exchange.ts";
import type { Endpoint, RouteDecision } from "./types.ts";

const a: Endpoint = { key: "a:1", hostname: "a", port: 1 };
const b: Endpoint = { key: "b:1", hostname: "b", port: 1 };

function decision(eps: Endpoint[], asked: [number, string[]][]): RouteDecision {
  return {
    cluster: "svc",
    timeoutMs: 0,
    perTryTimeoutMs: 0,
    pick(attempt, exclude) {
      asked.push([attempt, [...exclude]]);
      return eps.find((e) => !exclude.has(e.key)) ?? null;
    },
    retry: () => null,
    onResult: () => {},
  };
}

Deno.test("pickEndpoint() asks for the current try and avoids the endpoints already tried", () => {
  const x = new Exchange({ discard: () => {} });
  const asked: [number, string[]][] = [];
  x.decision = decision([a, b], asked);
  assertEquals(pickEndpoint(x), a);
  assertEquals(x.ep, a);
  excludeTried(x, a);
  x.attempt = 1;
  assertEquals(pickEndpoint(x), b);
  excludeTried(x, b);
  x.attempt = 2;
  assertEquals(pickEndpoint(x), null);
  assertEquals(x.ep, null);
  assertEquals(asked, [[0, []], [1, ["a:1"]], [2, ["a:1", "b:1"]]]);
});
