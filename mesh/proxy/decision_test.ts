import { assertEquals } from "../../tests/assert.ts";
import type { Balancer, Endpoint } from "../balance/mod.ts";
import type { RouteMetrics } from "../observe/proxy_metrics.ts";
import { Decision, type DecisionHost } from "./decision.ts";

const EP = { key: "10.0.0.7:15443", hostname: "10.0.0.7", port: 15443 } as Endpoint;

/** A host whose endpoints each carry their own header line, as capability routing does. */
function host(perEndpoint: boolean): DecisionHost {
  return {
    service: "ledger",
    policy: { timeout: 0, retries: {} },
    timeouts: false,
    deps: { now: () => 0 },
    extraRequestHeaders: "x-skein-destination: ledger\r\n",
    requests: { release: () => {} },
    perEndpointHeaders: perEndpoint,
    headerFor: (key: string) => `x-skein-destination: ledger@${key}\r\n`,
  } as unknown as DecisionHost;
}

const balancer = {
  pick: () => EP,
  onStart: () => {},
  onEnd: () => {},
} as unknown as Balancer;
const metrics = { record: () => {} } as unknown as RouteMetrics;
const TP = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n";

Deno.test("a line the record layer adds goes with every try, after the destination's lines", () => {
  const d = new Decision(host(false), balancer, metrics, "GET", undefined, false);
  d.addRequestHeader(TP);
  assertEquals(d.extraRequestHeaders, `x-skein-destination: ledger\r\n${TP}`);
  d.pick(0, new Set());
  assertEquals(d.extraRequestHeaders, `x-skein-destination: ledger\r\n${TP}`);
});

Deno.test("a line the record layer adds survives the per-endpoint lines each pick sets", () => {
  const d = new Decision(host(true), balancer, metrics, "GET", undefined, false);
  d.pick(0, new Set());
  assertEquals(d.extraRequestHeaders, `x-skein-destination: ledger@${EP.key}\r\n`);
  d.addRequestHeader(TP);
  d.pick(1, new Set([EP.key]));
  assertEquals(d.extraRequestHeaders, `x-skein-destination: ledger@${EP.key}\r\n${TP}`);
});
