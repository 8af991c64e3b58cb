import { assertEquals } from "../../tests/assert.ts";
import { mergeEndpoints } from "./proxy.ts";
import type { DataPlaneSnapshot } from "./data_plane.ts";

Deno.test("mergeEndpoints: eligible everywhere, ejected anywhere, counts summed", () => {
  const ep = (key: string, ejected: boolean, active: number) => ({
    endpoint: { key, hostname: "127.0.0.1", port: 1, weight: 1, zone: "" },
    active,
    ewmaMs: 1,
    ejected,
    eligible: !ejected,
  });
  const snap = (index: number, ejectB: boolean): DataPlaneSnapshot => ({
    index,
    metrics: "",
    policies: {},
    haveCatalog: true,
    requests: 10 + index,
    endpoints: {
      inbound: [],
      outbound: [{
        service: "svc",
        algorithm: "round_robin",
        eligible: ejectB ? 1 : 2,
        activeRequests: 3,
        retryBudgetAvailable: 50,
        endpoints: [ep("a", false, 1), ep("b", ejectB, 2)],
      }],
    },
  });
  const m = mergeEndpoints([snap(0, false), snap(1, true)]);
  const svc = m.outbound[0]!;
  assertEquals([svc.eligible, svc.activeRequests, svc.retryBudgetAvailable], [1, 3, 100]);
  assertEquals(svc.endpoints.map((e) => [e.endpoint.key, e.ejected, e.active]), [
    ["a", false, 2],
    ["b", true, 4],
  ]);
  assertEquals(m.workers, [{ index: 0, requests: 10 }, { index: 1, requests: 11 }]);
});
