import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { record } from "./layer_record.ts";
import { Exchange } from "./exchange.ts";
import type { RouteDecision } from "./types.ts";

Deno.test("record() tells the decision the status the client got and the bytes relayed", () => {
  const x = new Exchange({ discard: () => {} });
  const done: [number, number | undefined][] = [];
  const d: RouteDecision = {
    cluster: "svc",
    timeoutMs: 0,
    perTryTimeoutMs: 0,
    pick: () => null,
    retry: () => null,
    onResult: () => {},
    onDone: (status, bytesOut) => done.push([status, bytesOut]),
  };
  x.sentStatus = 503;
  x.bodyOut = 42;
  x.decision = d;
  record(x);
  assertEquals(done, [[503, 42]]);
  // A decision without onDone is fine too.
  x.decision = { ...d, onDone: undefined };
  record(x);
  assertEquals(done.length, 1);
});
