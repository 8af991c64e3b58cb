/**
 * A canary Route whose version has no instance answers 503 naming that version, not just the
 * service (which does have instances, of the other version).
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { Registry } from "../../common/metrics.ts";
import { parseRequestHead } from "../http1/mod.ts";
import { ProxyError } from "../forward/mod.ts";
import { ProxyMetrics } from "../observe/proxy_metrics.ts";
import { type Catalog, prepareCatalog } from "../discovery/catalog.ts";
import { MeshRouter, upstreamListenerName } from "./router.ts";
import { SharedLimits } from "../resilience/shared_limits.ts";

const CLIENT = { address: "127.0.0.1", port: 1, identity: null };

Deno.test("no endpoint for a canary's version names the version", () => {
  const b = new TextEncoder().encode("GET / HTTP/1.1\r\nhost: ledger\r\n\r\n");
  const router = new MeshRouter({
    zone: "",
    now: () => 0,
    // Always lands in the last 5%: the canary.
    random: () => 0.99,
    metrics: new ProxyMetrics(new Registry()),
    logger: nullLogger,
    source: "billing",
    limits: new SharedLimits(),
    upstreams: [{ service: "ledger" }],
    locals: [],
  });
  router.applyCatalog(prepareCatalog({
    index: 1,
    services: {
      ledger: [{
        id: "l1",
        service: "ledger",
        node: "vm-1",
        address: "127.0.0.1",
        port: 9,
        zone: "",
        version: "v1",
        weight: 1,
        tags: [],
        capabilities: [],
        meta: {},
        health: "passing",
      }],
    },
    resources: [{
      kind: "Route",
      service: "ledger",
      rules: [{ backends: [{ version: "v1", weight: 95 }, { version: "v2", weight: 5 }] }],
    }],
    trust: { roots: [], revoked: [] },
  } as unknown as Catalog, nullLogger));
  const d = router.route(parseRequestHead(b, 0, b.length), {
    name: upstreamListenerName({ service: "ledger" }),
    protocol: "http",
  }, CLIENT);
  // No instance has the canary's version at all: the Route's choice is answered at once.
  assert(d instanceof ProxyError, String(d));
  assertEquals([d.status, d.code], [503, "no_endpoint"]);
  assert(d.message.includes("version v2"), d.message);
});
