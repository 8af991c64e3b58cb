/**
 * The router's egress decisions without sockets: which requests reach an ExternalService, what
 * they carry, what a Policy changes, and what `registered_only` refuses.
 */
import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import { type LogFields, type Logger, nullLogger } from "../../common/log.ts";
import { Registry } from "../../common/metrics.ts";
import { parseRequestHead } from "../http1/mod.ts";
import { ByteWriter } from "../http1/writer.ts";
import { writeForwardedRequestHead } from "../http1/rewrite.ts";
import { ProxyError, type RouteDecision } from "../forward/mod.ts";
import { ProxyMetrics } from "../observe/proxy_metrics.ts";
import { type Catalog, prepareCatalog } from "../discovery/mod.ts";
import { HTTP_PROXY_LISTENER, MeshRouter, upstreamListenerName } from "./router.ts";
import { SharedLimits } from "../resilience/shared_limits.ts";

const CLIENT = { address: "127.0.0.1", port: 1, identity: null };
const HTTP_PROXY = { name: HTTP_PROXY_LISTENER, protocol: "http" as const };

function head(host: string, target = "/") {
  const b = new TextEncoder().encode(`GET ${target} HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  return parseRequestHead(b, 0, b.length);
}

function router(
  mode: "open" | "registered_only",
  resources: unknown[],
  logger: Logger = nullLogger,
): MeshRouter {
  const r = new MeshRouter({
    zone: "",
    now: () => 0,
    random: () => 0.5,
    metrics: new ProxyMetrics(new Registry()),
    logger,
    source: "payments",
    limits: new SharedLimits(),
    upstreams: [{ service: "stripe" }, { service: "stripe", caller: "reports" }],
    locals: [],
    trustDomain: "skein.local",
    egress: mode,
  });
  const catalog = {
    index: 1,
    services: {},
    resources,
    trust: { roots: [], revoked: [] },
  } as unknown as Catalog;
  r.applyCatalog(prepareCatalog(catalog, nullLogger));
  return r;
}

const STRIPE = { kind: "ExternalService", name: "stripe", hosts: ["api.stripe.com:443"] };

/** The head the decision would send to its first endpoint. */
function sent(d: RouteDecision, h: ReturnType<typeof head>): string {
  assert(d.pick(0, new Set()) !== null);
  const w = new ByteWriter(512);
  writeForwardedRequestHead(w, h, null, d.extraRequestHeaders);
  return new TextDecoder().decode(w.view());
}

/** A logger that keeps its info lines. */
function recording(): { log: Logger; lines: LogFields[] } {
  const lines: LogFields[] = [];
  const log: Logger = {
    ...nullLogger,
    info: (_m: string, f?: LogFields) => void lines.push(f ?? {}),
    with: (extra: LogFields) => ({
      ...log,
      info: (_m: string, f?: LogFields) => void lines.push({ ...extra, ...f }),
    }),
  };
  return { log, lines };
}

Deno.test("an upstream naming an ExternalService dials its host with TLS and its own Host", () => {
  const r = router("open", [STRIPE]);
  const h = head("127.0.0.1:9001", "/v1/charges");
  const d = r.route(h, { name: upstreamListenerName({ service: "stripe" }), protocol: "http" });
  assert(!(d instanceof ProxyError), String(d));
  assertEquals(d.cluster, "stripe");
  const ep = d.pick(0, new Set());
  assertEquals(ep?.hostname, "api.stripe.com");
  assertEquals(ep?.port, 443);
  assertEquals([ep?.origin?.serverName, ep?.origin?.caPem], ["api.stripe.com", null]);
  assertEquals(ep?.identity, undefined, "no mesh identity is asked of an external host");
  const listed = r.stats().outbound.filter((x) => x.service === "stripe");
  assertEquals(listed.map((x) => x.endpoints.map((e) => e.endpoint.key)), [[
    "stripe@api.stripe.com:443",
  ]]);
});

Deno.test("the request sent to an external host names it in Host, in origin-form, unsteered", () => {
  const r = router("open", [STRIPE]);
  const h = head("api.stripe.com", "http://api.stripe.com/v1/x?y=1");
  const d = r.route(h, HTTP_PROXY, CLIENT);
  assert(!(d instanceof ProxyError), String(d));
  const text = sent(d, h);
  assertMatch(text, /^GET \/v1\/x\?y=1 HTTP\/1\.1\r\n/);
  assertEquals(text.match(/^host:/gim)?.length, 1, text);
  assertMatch(text, /\r\nhost: api\.stripe\.com\r\n/);
  assert(!/x-skein-destination/i.test(text), text);
});

Deno.test("http_proxy finds an ExternalService by host:port, by host, or by its name", () => {
  const r = router("open", [
    STRIPE,
    { kind: "ExternalService", name: "files", hosts: ["files.example:8443"] },
    { kind: "ExternalService", name: "files-alt", hosts: ["files.example:9443"] },
  ]);
  const cluster = (host: string) => {
    const d = r.route(head(host), HTTP_PROXY, CLIENT);
    return d instanceof ProxyError ? d.code : d.cluster;
  };
  assertEquals(cluster("api.stripe.com"), "stripe");
  assertEquals(cluster("API.Stripe.com:443"), "stripe");
  assertEquals(cluster("stripe"), "stripe");
  assertEquals(cluster("files.example:9443"), "files-alt");
  assertEquals(cluster("files.example"), "files", "without a port, the first listing the host");
  assertEquals(cluster("elsewhere.example"), "no_route", "open: as before");
});

Deno.test("a Policy for an ExternalService's name sets its timeouts and retries", () => {
  const r = router("open", [STRIPE, {
    kind: "Policy",
    service: "stripe",
    timeout: "750ms",
    retries: { attempts: 4, per_try_timeout: "200ms" },
  }]);
  const d = r.route(head("api.stripe.com"), HTTP_PROXY, CLIENT);
  assert(!(d instanceof ProxyError), String(d));
  assertEquals([d.timeoutMs, d.perTryTimeoutMs], [750, 200]);
  assertEquals((r.policies().stripe as { retries: { attempts: number } }).retries.attempts, 4);
});

Deno.test("an Authorization for an ExternalService is enforced at the calling proxy, audited", () => {
  const { log, lines } = recording();
  const r = router("open", [STRIPE, {
    kind: "Authorization",
    service: "stripe",
    allow: [{ from: ["payments"] }],
  }], log);
  const ok = r.route(head("x"), {
    name: upstreamListenerName({ service: "stripe" }),
    protocol: "http",
  });
  assert(!(ok instanceof ProxyError), String(ok));
  const no = r.route(head("x", "/v1/refunds"), {
    name: upstreamListenerName({ service: "stripe", caller: "reports" }),
    protocol: "http",
  });
  assert(no instanceof ProxyError);
  assertEquals([no.status, no.code], [403, "denied"]);
  const audit = lines.filter((l) => l.component === "audit");
  assertEquals(audit.length, 1);
  assertEquals(audit[0]!.caller, "spiffe://skein.local/svc/reports");
  assertEquals([audit[0]!.service, audit[0]!.path, audit[0]!.decision], [
    "stripe",
    "/v1/refunds",
    "deny",
  ]);
});

Deno.test("an Authorization's methods for an ExternalService cannot be overridden by header", () => {
  const r = router("open", [STRIPE, {
    kind: "Authorization",
    service: "stripe",
    allow: [{ from: ["payments"], methods: ["GET"] }],
  }]);
  const listener = { name: upstreamListenerName({ service: "stripe" }), protocol: "http" as const };
  // Many APIs read these as the method: sent on, a GET allowed here would act as a DELETE.
  const overrides = "x-http-method-override: DELETE\r\nx-http-method: DELETE\r\n" +
    "x-method-override: DELETE\r\n";
  const b = new TextEncoder().encode(
    `GET /v1/customers/c1 HTTP/1.1\r\nhost: x\r\n${overrides}\r\n`,
  );
  const h = parseRequestHead(b, 0, b.length);
  const d = r.route(h, listener);
  assert(!(d instanceof ProxyError), String(d));
  const text = sent(d, h);
  assertMatch(text, /^GET \/v1\/customers\/c1 HTTP\/1\.1\r\n/);
  assert(!/method/i.test(text.slice(text.indexOf("\r\n"))), text);
  // Without an Authorization every call is allowed: the app's fields go on untouched.
  const open = router("open", [STRIPE]);
  const h2 = parseRequestHead(b, 0, b.length);
  const d2 = open.route(h2, listener);
  assert(!(d2 instanceof ProxyError), String(d2));
  assertMatch(sent(d2, h2), /x-http-method-override: DELETE/);
});

Deno.test("registered_only refuses an unknown host with an audited 403; open keeps 404", () => {
  const { log, lines } = recording();
  const strict = router("registered_only", [STRIPE], log);
  const d = strict.route(head("evil.example", "/x?secret=1"), HTTP_PROXY, CLIENT);
  assert(d instanceof ProxyError);
  assertEquals([d.status, d.code], [403, "egress_denied"]);
  assertEquals(
    lines.filter((l) => l.component === "audit").map((l) => [l.service, l.reason, l.path]),
    [
      ["evil.example", "unregistered_destination", "/x"],
    ],
  );
  const allowed = strict.route(head("api.stripe.com"), HTTP_PROXY, CLIENT);
  assert(!(allowed instanceof ProxyError), String(allowed));
  const open = router("open", [STRIPE]).route(head("evil.example"), HTTP_PROXY, CLIENT);
  assert(open instanceof ProxyError);
  assertEquals([open.status, open.code], [404, "no_route"]);
});

Deno.test("an unreadable ca_file makes the endpoint fail with why, never fall back to roots", () => {
  const r = router("open", [{ ...STRIPE, tls: { ca_file: "/nonexistent/skein-ca.pem" } }]);
  const d = r.route(head("api.stripe.com"), HTTP_PROXY, CLIENT);
  assert(!(d instanceof ProxyError), String(d));
  const ep = d.pick(0, new Set());
  assertEquals(ep?.origin?.caPem, null);
  // What /endpoints shows (and workers post to the main thread): plain data, no bundle text.
  const shown = r.stats().outbound.find((x) => x.service === "stripe")!.endpoints[0]!.endpoint;
  assertEquals(structuredClone(shown) as unknown, {
    key: "stripe@api.stripe.com:443",
    hostname: "api.stripe.com",
    port: 443,
    weight: 1,
    zone: "",
    ca_file: "/nonexistent/skein-ca.pem",
  });
  assertMatch(ep?.origin?.caError ?? "", /cannot read ca_file \/nonexistent\/skein-ca\.pem/);
});

Deno.test("CONNECT to an ExternalService is refused, not forwarded as a request", () => {
  const r = router("open", [STRIPE]);
  const b = new TextEncoder().encode(
    "CONNECT api.stripe.com:443 HTTP/1.1\r\nhost: api.stripe.com:443\r\n\r\n",
  );
  const d = r.route(parseRequestHead(b, 0, b.length), HTTP_PROXY, CLIENT);
  assert(d instanceof ProxyError);
  assertEquals([d.status, d.code], [400, "bad_request"]);
  assertMatch(d.message, /CONNECT is not supported/);
});

Deno.test("an opaque TCP upstream naming an ExternalService is refused, not tunnelled", () => {
  const r = router("open", [STRIPE]);
  const d = r.routeTcp({ name: upstreamListenerName({ service: "stripe" }), protocol: "tcp" });
  assert(d instanceof ProxyError);
  assertEquals([d.status, d.code], [404, "no_route"]);
  assertMatch(d.message, /protocol: http/);
});

Deno.test("a mesh service of the same name wins over an ExternalService", () => {
  const r = new MeshRouter({
    zone: "",
    now: () => 0,
    random: () => 0.5,
    metrics: new ProxyMetrics(new Registry()),
    logger: nullLogger,
    source: "payments",
    limits: new SharedLimits(),
    upstreams: [{ service: "stripe" }],
    locals: [],
  });
  const instance = {
    id: "s1",
    service: "stripe",
    node: "vm-9",
    address: "10.0.0.9",
    port: 15443,
    zone: "",
    version: "",
    weight: 1,
    tags: [],
    capabilities: [],
    meta: {},
    health: "passing",
  };
  r.applyCatalog(prepareCatalog(
    {
      index: 1,
      services: { stripe: [instance] },
      resources: [STRIPE],
      trust: { roots: [], revoked: [] },
    } as unknown as Catalog,
    nullLogger,
  ));
  for (
    const d of [
      r.route(head("x"), { name: upstreamListenerName({ service: "stripe" }), protocol: "http" }),
      r.route(head("stripe"), HTTP_PROXY, CLIENT),
    ]
  ) {
    assert(!(d instanceof ProxyError), String(d));
    const ep = d.pick(0, new Set());
    assertEquals([ep?.hostname, ep?.origin], ["10.0.0.9", undefined]);
  }
});
