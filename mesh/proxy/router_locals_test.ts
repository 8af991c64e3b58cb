/**
 * The inbound side after a reload changed the local apps: a call naming a service no longer
 * fronted here is turned down as "reached no app" (so a calling proxy retries elsewhere), not
 * sent to the one app left, and a RateLimit holds for apps the reload added.
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { Registry } from "../../common/metrics.ts";
import { ProxyMetrics } from "../observe/proxy_metrics.ts";
import { ProxyError, type RouteDecision } from "../forward/mod.ts";
import { reachedNoApp } from "../forward/refuse.ts";
import { parseRequestHead } from "../http1/mod.ts";
import { prepareCatalog } from "../discovery/mod.ts";
import { INBOUND_LISTENER, MeshRouter } from "./router.ts";
import { SharedLimits } from "../resilience/shared_limits.ts";

const enc = new TextEncoder();
const IN = { name: INBOUND_LISTENER, protocol: "http" as const };

function head(lines: string) {
  const b = enc.encode(`GET / HTTP/1.1\r\n${lines}\r\n`);
  return parseRequestHead(b, 0, b.length, {
    maxHeadBytes: 65536,
    maxHeaderCount: 100,
    maxBodyBytes: 1 << 20,
  });
}

function router(locals: { name: string; port: number }[]): MeshRouter {
  return new MeshRouter({
    zone: "",
    now: () => performance.now(),
    random: Math.random,
    metrics: new ProxyMetrics(new Registry()),
    logger: nullLogger,
    source: "vm",
    limits: new SharedLimits(),
    upstreams: [],
    locals,
    trustDomain: "skein.local",
  });
}

function endpointOf(d: RouteDecision | ProxyError): string {
  assert(!(d instanceof ProxyError), `refused: ${(d as ProxyError).message}`);
  return (d as RouteDecision).pick(0, new Set())!.key;
}

Deno.test("a call naming a service this proxy no longer fronts is refused, not sent to the app left", () => {
  const r = router([{ name: "ledger", port: 7001 }, { name: "billing", port: 7002 }]);
  r.applyCatalog(prepareCatalog({
    index: 1,
    services: {},
    trust: { roots: [], revoked: [] },
    resources: [],
  }, nullLogger));
  assertEquals(
    endpointOf(r.route(head("host: ledger\r\nx-skein-destination: ledger\r\n"), IN)),
    "127.0.0.1:7001",
  );
  r.setLocals([{ name: "billing", port: 7002 }]);
  const named = r.route(head("host: ledger\r\nx-skein-destination: ledger\r\n"), IN);
  assert(named instanceof ProxyError, "ledger is gone from this proxy");
  assert(reachedNoApp(named.code), `a calling proxy must retry elsewhere, got ${named.code}`);
  // Without the mesh header (a plain client on the inbound port) the only app still serves it.
  assertEquals(endpointOf(r.route(head("host: 10.0.0.5\r\n"), IN)), "127.0.0.1:7002");
  assertEquals(
    endpointOf(r.route(head("host: billing\r\nx-skein-destination: billing\r\n"), IN)),
    "127.0.0.1:7002",
  );
});

Deno.test("a RateLimit holds for a local app a reload added", () => {
  const r = router([{ name: "billing", port: 7002 }]);
  r.applyCatalog(prepareCatalog({
    index: 1,
    services: {},
    trust: { roots: [], revoked: [] },
    resources: [{
      kind: "RateLimit",
      service: "ledger",
      requests_per_second: 0.001,
      burst: 1,
      scope: "instance",
    }],
  }, nullLogger));
  r.setLocals([{ name: "billing", port: 7002 }, { name: "ledger", port: 7001 }]);
  const h = () => head("host: ledger\r\nx-skein-destination: ledger\r\n");
  assertEquals(endpointOf(r.route(h(), IN)), "127.0.0.1:7001");
  const second = r.route(h(), IN);
  assert(second instanceof ProxyError, "the burst of 1 is spent");
  assertEquals(second.code, "rate_limited");
});

Deno.test("a RateLimit counts each TCP tunnel opened to the service", () => {
  const r = new MeshRouter({
    zone: "",
    now: () => performance.now(),
    random: Math.random,
    metrics: new ProxyMetrics(new Registry()),
    logger: nullLogger,
    source: "vm",
    limits: new SharedLimits(),
    upstreams: [],
    locals: [{ name: "db", port: 5432 }],
    tunnelPort: () => 40000,
    trustDomain: "skein.local",
  });
  r.applyCatalog(prepareCatalog({
    index: 1,
    services: {},
    trust: { roots: [], revoked: [] },
    resources: [{
      kind: "RateLimit",
      service: "db",
      requests_per_second: 0.001,
      burst: 1,
      scope: "instance",
    }],
  }, nullLogger));
  const h = () =>
    head("host: db\r\nx-skein-destination: db\r\nconnection: upgrade\r\nupgrade: skein-tcp\r\n");
  assert(!(r.route(h(), IN) instanceof ProxyError), "the first tunnel opens");
  const second = r.route(h(), IN);
  assert(second instanceof ProxyError, "the burst of 1 is spent");
  assertEquals(second.code, "rate_limited");
});
