import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import { memoryLogger, nullLogger } from "../../common/log.ts";
import { Registry } from "../../common/metrics.ts";
import { ProxyMetrics } from "../observe/proxy_metrics.ts";
import { HttpForwarder, ProxyError, type Router } from "../forward/mod.ts";
import { parseRequestHead } from "../http1/mod.ts";
import { prepareCatalog, type PreparedCatalog } from "../discovery/mod.ts";
import { INBOUND_LISTENER, MeshRouter } from "./router.ts";
import { SharedLimits } from "../resilience/shared_limits.ts";
import { InboundAuthz } from "../authz/mod.ts";
import { ResourceSchema } from "../../config/mod.ts";

const TD = "skein.local";
const BILLING = "spiffe://skein.local/svc/billing";
const PAYMENTS = "spiffe://skein.local/svc/payments";

const LEDGER_POLICY = {
  kind: "Authorization",
  service: "ledger",
  default: "deny",
  allow: [
    { from: ["payments"], methods: ["POST"], paths: ["/charge", "/refund/*"] },
    { from: ["payments"], methods: ["GET"], paths: ["/public/**"] },
  ],
  deny: [{ from: ["payments"], paths: ["/refund/internal/*"] }],
};

function catalog(resources: unknown[], index = 1): PreparedCatalog {
  return prepareCatalog(
    { index, services: {}, resources, trust: { roots: [], revoked: [] } },
    nullLogger,
  );
}

function head(raw: string) {
  const b = new TextEncoder().encode(raw);
  return parseRequestHead(b, 0, b.length);
}

/** A raw HTTP/1.1 exchange, so the target reaches the proxy exactly as written. */
async function rawRequest(port: number, method: string, target: string, extra = "") {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(
      new TextEncoder().encode(
        `${method} ${target} HTTP/1.1\r\nhost: ledger\r\n${extra}connection: close\r\n` +
          `content-length: 0\r\n\r\n`,
      ),
    );
    let text = "";
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await c.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const [h, body = ""] = text.split("\r\n\r\n");
    const lines = h!.split("\r\n");
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
    }
    return { status: Number(lines[0]!.split(" ")[1]), headers, body };
  } finally {
    c.close();
  }
}

/**
 * An inbound forwarder in front of a recording app. The caller identity that a TLS layer would
 * set comes from the test's `x-test-caller` header (mTLS itself is covered elsewhere).
 */
function harness() {
  const seen: string[] = [];
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const u = new URL(req.url);
    seen.push(`${req.method} ${u.pathname}${u.search}`);
    return new Response("app");
  });
  const log = memoryLogger();
  const router = new MeshRouter({
    zone: "",
    now: () => performance.now(),
    random: Math.random,
    metrics: new ProxyMetrics(new Registry()),
    logger: log,
    source: "ledger",
    limits: new SharedLimits(),
    upstreams: [],
    locals: [{ name: "ledger", port: app.addr.port }],
    trustDomain: TD,
  });
  const withCaller: Router = {
    route(h, listener, client) {
      const i = h.names.indexOf("x-test-caller");
      client.identity = i >= 0 ? h.values[i]! : null;
      return router.route(h, listener, client);
    },
  };
  const inbound = new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    node: "vm-ledger",
    listener: { name: INBOUND_LISTENER, protocol: "http" },
    router: withCaller,
    logger: nullLogger,
  });
  const port = inbound.addr.port;
  const call = (method: string, target: string, caller: string | null) =>
    rawRequest(port, method, target, caller === null ? "" : `x-test-caller: ${caller}\r\n`);
  const audits = () => log.lines.filter((l) => l.includes("component=audit"));
  return {
    router,
    seen,
    call,
    audits,
    async close() {
      await inbound.close();
      await app.shutdown();
    },
  };
}

Deno.test("inbound authz: allowed callers reach the app, denied ones get a 403 and an audit line", async () => {
  const h = harness();
  try {
    // No Authorization resource: open, as before policies existed, even without identity.
    assertEquals((await h.call("GET", "/anything", BILLING)).status, 200);
    assertEquals((await h.call("GET", "/anything", null)).status, 200);
    assertEquals(h.audits(), []);

    h.router.applyCatalog(catalog([LEDGER_POLICY]));
    h.seen.length = 0;
    const ok = await h.call("POST", "/charge?amount=5", PAYMENTS);
    assertEquals(ok.status, 200);
    assertEquals(h.audits(), [], "allows are not audited without audit_allowed");

    const denied = await h.call("POST", "/charge?card=4242", BILLING);
    assertEquals(denied.status, 403);
    assertEquals(denied.headers.get("x-skein-denied"), "default_deny");
    assertEquals(denied.headers.get("x-skein-error"), "denied");
    assertEquals(denied.headers.get("x-skein-proxy"), "vm-ledger");
    assertMatch(denied.body, /denied by policy: default_deny/);

    const byRule = await h.call("POST", "/refund/internal/x", PAYMENTS);
    assertEquals(byRule.headers.get("x-skein-denied"), "denied_by_rule");
    assertMatch(byRule.body, /deny\[0\]/);

    const wrongMethod = await h.call("GET", "/charge", PAYMENTS);
    assertEquals(wrongMethod.status, 403);

    // Plaintext mesh: no identity, and a resource exists.
    const anon = await h.call("GET", "/public/a", null);
    assertEquals(anon.status, 403);
    assertEquals(anon.headers.get("x-skein-denied"), "no_identity");

    assertEquals(h.seen, ["POST /charge?amount=5"], "denied requests never reach the app");
    const audits = h.audits();
    assertEquals(audits.length, 4, audits.join("\n"));
    assertMatch(audits[0]!, /type=authz/);
    assertMatch(audits[0]!, /caller=spiffe:\/\/skein\.local\/svc\/billing/);
    assertMatch(audits[0]!, /service=ledger/);
    assertMatch(audits[0]!, /path=\/charge( |$)/);
    assertMatch(audits[0]!, /decision=deny reason=default_deny/);
    assert(!audits[0]!.includes("4242"), "the query is not logged");
    assertMatch(audits[1]!, /rule=deny\[0\]/);
    assertMatch(audits[3]!, /reason=no_identity/);
  } finally {
    await h.close();
  }
});

Deno.test("inbound authz: the app receives the normalized path that was authorized", async () => {
  const h = harness();
  try {
    h.router.applyCatalog(catalog([LEDGER_POLICY]));
    // Traversal out of an allowed prefix is judged (and denied) on where it really goes.
    const out = await h.call("POST", "/refund/../admin", PAYMENTS);
    assertEquals(out.status, 403);
    const encoded = await h.call("POST", "/refund/%2e%2e/admin", PAYMENTS);
    assertEquals(encoded.status, 403);
    // Allowed after normalization: the app sees the normalized path, the query kept.
    assertEquals((await h.call("POST", "/refund/a/./b/../42?x=1", PAYMENTS)).status, 200);
    assertEquals((await h.call("POST", "//charge", PAYMENTS)).status, 200);
    assertEquals((await h.call("GET", "/public/x/%7euser", PAYMENTS)).status, 200);
    assertEquals(h.seen, ["POST /refund/a/42?x=1", "POST /charge", "GET /public/x/~user"]);
  } finally {
    await h.close();
  }
});

Deno.test("inbound authz: audit_allowed, policy changes and removal apply without restart", async () => {
  const h = harness();
  try {
    h.router.applyCatalog(catalog([{ ...LEDGER_POLICY, audit_allowed: true }]));
    assertEquals((await h.call("POST", "/charge", PAYMENTS)).status, 200);
    const a = h.audits();
    assertEquals(a.length, 1);
    assertMatch(a[0]!, /decision=allow reason=allowed_by_rule rule=allow\[0\]/);

    // Opened to billing by a new catalog.
    h.router.applyCatalog(catalog([{
      ...LEDGER_POLICY,
      allow: [...LEDGER_POLICY.allow, { from: ["billing"], methods: ["get"] }],
    }], 2));
    assertEquals((await h.call("GET", "/reports", BILLING)).status, 200);
    assertEquals((await h.call("POST", "/reports", BILLING)).status, 403);

    // default: allow with a deny list.
    h.router.applyCatalog(catalog([{
      kind: "Authorization",
      service: "ledger",
      default: "allow",
      deny: [{ from: ["billing"], methods: ["DELETE"] }],
    }], 3));
    assertEquals((await h.call("POST", "/x", BILLING)).status, 200);
    const del = await h.call("DELETE", "/x", BILLING);
    assertEquals(del.headers.get("x-skein-denied"), "denied_by_rule");

    // Resource removed: open again.
    h.router.applyCatalog(catalog([], 4));
    assertEquals((await h.call("DELETE", "/x", BILLING)).status, 200);
  } finally {
    await h.close();
  }
});

Deno.test("inbound authz: opaque TCP tunnels need a rule that allows the caller everything", () => {
  const router = new MeshRouter({
    zone: "",
    now: () => 0,
    random: () => 0,
    metrics: new ProxyMetrics(new Registry()),
    logger: nullLogger,
    source: "db",
    limits: new SharedLimits(),
    upstreams: [],
    locals: [{ name: "db", port: 1 }],
    tunnelPort: () => 2,
    trustDomain: TD,
  });
  const tunnel = () =>
    head("GET / HTTP/1.1\r\nhost: db\r\nconnection: upgrade\r\nupgrade: skein-tcp\r\n\r\n");
  const route = (caller: string | null) =>
    router.route(tunnel(), { name: INBOUND_LISTENER, protocol: "http" }, {
      address: null,
      port: 0,
      identity: caller,
    });
  const reason = (r: unknown) =>
    r instanceof ProxyError ? r.headers?.match(/x-skein-denied: (\w+)/)?.[1] : "routed";
  assertEquals(reason(route(BILLING)), "routed", "no policy: open");
  router.applyCatalog(catalog([{
    kind: "Authorization",
    service: "db",
    default: "deny",
    allow: [
      { from: ["payments"] },
      { from: ["billing"], paths: ["/reports/*"] },
      { from: ["orders"], paths: ["/**"], methods: ["*"] },
    ],
    deny: [{ from: ["audit"], paths: ["/secret/*"] }],
  }]));
  assertEquals(reason(route(PAYMENTS)), "routed");
  assertEquals(reason(route("spiffe://skein.local/svc/orders")), "routed", "/** is everything");
  assertEquals(reason(route(BILLING)), "default_deny", "a path-limited rule cannot cover TCP");
  assertEquals(reason(route(null)), "no_identity");
  router.applyCatalog(catalog([{
    kind: "Authorization",
    service: "db",
    default: "allow",
    deny: [{ from: ["audit"], paths: ["/secret/*"] }],
  }], 2));
  assertEquals(reason(route(BILLING)), "routed");
  assertEquals(
    reason(route("spiffe://skein.local/svc/audit")),
    "denied_by_rule",
    "any deny rule naming the caller denies a tunnel",
  );
});

Deno.test("InboundAuthz: only local services' policies, recompiled only when changed", () => {
  const log = memoryLogger();
  const a = new InboundAuthz({ services: ["ledger"], trustDomain: TD, logger: log });
  const parse = (r: unknown) => ResourceSchema.parse(r);
  const other = parse({ ...LEDGER_POLICY, service: "payments" });
  a.apply([parse(LEDGER_POLICY), other]);
  assert(a.has("ledger"));
  assert(!a.has("payments"), "policies of services this proxy does not front are skipped");
  a.apply([parse(LEDGER_POLICY), other]);
  const applied = log.lines.filter((l) => l.includes("authorization policy applied"));
  assertEquals(applied.length, 1, "an unchanged resource is not recompiled");
  const h = head("POST /charge HTTP/1.1\r\nhost: ledger\r\n\r\n");
  assertEquals(a.checkHttp("ledger", h, PAYMENTS), null);
  assertEquals(h.targetRewritten, undefined, "a normal path is forwarded verbatim");
  a.apply([]);
  assert(!a.has("ledger"));
  assertEquals(log.lines.filter((l) => l.includes("authorization policy removed")).length, 1);
});

Deno.test("inbound authz: an Authorization this proxy cannot read denies every call (fail closed)", async () => {
  const h = harness();
  try {
    // A field from a newer version: the strict schema refuses the whole resource.
    h.router.applyCatalog(catalog([{ ...LEDGER_POLICY, future_field: true }]));
    const r = await h.call("POST", "/charge", PAYMENTS);
    assertEquals(r.status, 403, "an unreadable policy must not leave the service open");
    assertEquals(r.headers.get("x-skein-denied"), "policy_unreadable");
    assertEquals(h.seen, []);
    assertMatch(h.audits().at(-1)!, /reason=policy_unreadable/);
    // A readable version of it applies as usual, and an unreadable one for another service is
    // none of this proxy's business.
    h.router.applyCatalog(
      catalog([LEDGER_POLICY, { kind: "Authorization", service: "other", bogus: 1 }], 2),
    );
    assertEquals((await h.call("POST", "/charge", PAYMENTS)).status, 200);
    assertEquals((await h.call("POST", "/charge", BILLING)).status, 403);
  } finally {
    await h.close();
  }
});
