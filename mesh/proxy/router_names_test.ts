/**
 * Service names that are also property names of every JavaScript object (`constructor`,
 * `toString`, ...) must route like any unknown name (regression: `Host: constructor` on
 * `http_proxy` used to leave a broken destination that failed every later catalog, so
 * revocations stopped reaching the proxy).
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { Registry } from "../../common/metrics.ts";
import { parseRequestHead } from "../http1/mod.ts";
import { ProxyError } from "../forward/mod.ts";
import { ProxyMetrics } from "../observe/proxy_metrics.ts";
import { type Catalog, prepareCatalog } from "../discovery/mod.ts";
import { HTTP_PROXY_LISTENER, MeshRouter, upstreamListenerName } from "./router.ts";
import { SharedLimits } from "../resilience/shared_limits.ts";

const CLIENT = { address: "127.0.0.1", port: 1, identity: null };

function head(host: string) {
  const b = new TextEncoder().encode(`GET / HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  return parseRequestHead(b, 0, b.length);
}

function catalog(index: number, revoked: string[] = []): Catalog {
  return {
    index,
    services: {
      ledger: [{
        id: "l1",
        service: "ledger",
        node: "vm-1",
        address: "127.0.0.1",
        port: 9,
        zone: "",
        version: "",
        weight: 1,
        tags: [],
        capabilities: [],
        meta: {},
        health: "passing",
      }],
    },
    resources: [],
    trust: { roots: [], revoked },
  } as unknown as Catalog;
}

Deno.test("names like constructor or toString route as unknown services and break nothing", () => {
  const router = new MeshRouter({
    zone: "",
    now: () => 0,
    random: Math.random,
    metrics: new ProxyMetrics(new Registry()),
    logger: nullLogger,
    source: "billing",
    limits: new SharedLimits(),
    // Even configured as an upstream, such a name gets no endpoints from the prototype.
    upstreams: [{ service: "constructor" }],
    locals: [],
  });
  router.applyCatalog(prepareCatalog(catalog(1), nullLogger));
  const listener = { name: HTTP_PROXY_LISTENER, protocol: "http" as const };
  for (const name of ["toString", "hasOwnProperty", "valueOf", "isPrototypeOf"]) {
    const r = router.route(head(name), listener, CLIENT);
    assert(r instanceof ProxyError, name);
    assertEquals([r.status, r.code], [404, "no_route"], name);
  }
  const up = router.route(head("x"), {
    name: upstreamListenerName({ service: "constructor" }),
    protocol: "http",
  }, CLIENT);
  assert(!(up instanceof ProxyError), String(up));
  assertEquals(up.pick(0, new Set()), null, "no endpoint from Object.prototype.constructor");
  // Later catalogs still apply, and a real service still routes.
  router.applyCatalog(prepareCatalog(catalog(2), nullLogger));
  const ok = router.route(head("ledger"), listener, CLIENT);
  assert(!(ok instanceof ProxyError), String(ok));
  assertEquals(ok.cluster, "ledger");
});
