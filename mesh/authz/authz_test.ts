import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import { Authorization } from "../../config/mod.ts";
import { parseSpiffeId, type SpiffeId } from "../../common/tls/mod.ts";
import {
  auditLine,
  compileAuthorization,
  deniedHttp1,
  deniedResponse,
  evaluate,
  evaluateTcp,
  normalizePath,
  shouldAudit,
  unreadableAuthorization,
} from "./mod.ts";

const TD = "skein.local";
function id(uri: string): SpiffeId {
  const p = parseSpiffeId(uri);
  if (!p) throw new Error(`bad id ${uri}`);
  return p;
}
const PAYMENTS = id("spiffe://skein.local/svc/payments");
const BILLING = id("spiffe://skein.local/svc/billing");
const EVIL = id("spiffe://evil.example/svc/payments");
const CP1 = id("spiffe://skein.local/control/cp-1");
const PAYOUTS = id("spiffe://skein.local/svc/payouts");

const ledger = compileAuthorization(
  Authorization.parse({
    kind: "Authorization",
    service: "ledger",
    default: "deny",
    allow: [
      { from: ["payments"], methods: ["POST"], paths: ["/charge", "/refund/*"] },
      {
        from: ["billing", "spiffe://skein.local/control/*"],
        methods: ["get"],
        paths: ["/users/*/balance", "/reports/**/csv"],
      },
      { from: ["pay*"], paths: ["/health"] },
      { from: ["*"], methods: ["GET"], paths: ["/public/*"] },
    ],
    deny: [{ from: ["payments"], paths: ["/refund/internal/*"] }],
  }),
  { trustDomain: TD },
);

const openWithBlocklist = compileAuthorization(
  Authorization.parse({
    kind: "Authorization",
    service: "ledger",
    default: "allow",
    audit_allowed: true,
    deny: [{ from: ["billing"], methods: ["DELETE"] }],
  }),
  { trustDomain: TD },
);

Deno.test("evaluate(): rule table", () => {
  type Row = [string, SpiffeId | null, string, string, boolean, string, string | null];
  const rows: Row[] = [
    ["exact path + method", PAYMENTS, "POST", "/charge", true, "allowed_by_rule", "allow[0]"],
    // RFC 9110: methods are case-sensitive; `post` is another method than the POST allowed.
    ["method case-sensitive", PAYMENTS, "post", "/charge", false, "default_deny", null],
    ["query ignored", PAYMENTS, "POST", "/charge?amount=5", true, "allowed_by_rule", "allow[0]"],
    ["wrong method", PAYMENTS, "GET", "/charge", false, "default_deny", null],
    ["exact is not prefix", PAYMENTS, "POST", "/charge/extra", false, "default_deny", null],
    ["exact is not prefix (2)", PAYMENTS, "POST", "/charges", false, "default_deny", null],
    ["prefix base itself", PAYMENTS, "POST", "/refund", true, "allowed_by_rule", "allow[0]"],
    ["prefix child", PAYMENTS, "POST", "/refund/42", true, "allowed_by_rule", "allow[0]"],
    [
      "prefix deep child",
      PAYMENTS,
      "POST",
      "/refund/42/items/1",
      true,
      "allowed_by_rule",
      "allow[0]",
    ],
    ["prefix is per segment", PAYMENTS, "POST", "/refunds", false, "default_deny", null],
    [
      "deny beats allow",
      PAYMENTS,
      "POST",
      "/refund/internal/x",
      false,
      "denied_by_rule",
      "deny[0]",
    ],
    [
      "dot segments resolved before deny",
      PAYMENTS,
      "POST",
      "/refund/a/../internal/x",
      false,
      "denied_by_rule",
      "deny[0]",
    ],
    [
      "encoded dots resolved",
      PAYMENTS,
      "POST",
      "/refund/%2e%2e/admin",
      false,
      "default_deny",
      null,
    ],
    [
      "traversal out of allowed prefix",
      PAYMENTS,
      "POST",
      "/refund/../admin",
      false,
      "default_deny",
      null,
    ],
    ["double slash collapsed", PAYMENTS, "POST", "//charge", true, "allowed_by_rule", "allow[0]"],
    ["other caller not allowed", BILLING, "POST", "/charge", false, "default_deny", null],
    ["other trust domain, same name", EVIL, "POST", "/charge", false, "default_deny", null],
    ["one-segment glob", BILLING, "GET", "/users/17/balance", true, "allowed_by_rule", "allow[1]"],
    [
      "one-segment glob, not two",
      BILLING,
      "GET",
      "/users/17/x/balance",
      false,
      "default_deny",
      null,
    ],
    [
      "double-star glob",
      BILLING,
      "GET",
      "/reports/2026/01/csv",
      true,
      "allowed_by_rule",
      "allow[1]",
    ],
    [
      "control node by SPIFFE glob",
      CP1,
      "GET",
      "/users/1/balance",
      true,
      "allowed_by_rule",
      "allow[1]",
    ],
    [
      "name glob in from, any method",
      PAYOUTS,
      "DELETE",
      "/health",
      true,
      "allowed_by_rule",
      "allow[2]",
    ],
    ["name glob does not match control", CP1, "GET", "/health", false, "default_deny", null],
    ["wildcard caller", CP1, "GET", "/public/logo.png", true, "allowed_by_rule", "allow[3]"],
    ["wildcard caller, wrong method", CP1, "POST", "/public/logo.png", false, "default_deny", null],
    ["no identity", null, "GET", "/public/x", false, "no_identity", null],
    ["not a path", PAYMENTS, "OPTIONS", "*", false, "invalid_path", null],
    [
      "absolute-form target",
      PAYMENTS,
      "POST",
      "http://ledger/charge",
      true,
      "allowed_by_rule",
      "allow[0]",
    ],
  ];
  for (const [name, caller, method, path, allowed, reason, rule] of rows) {
    assertEquals(evaluate(ledger, { caller, method, path }), { allowed, reason, rule }, name);
  }
});

Deno.test("evaluate(): default allow with a deny list, and no policy", () => {
  assertEquals(evaluate(openWithBlocklist, { caller: BILLING, method: "DELETE", path: "/x" }), {
    allowed: false,
    reason: "denied_by_rule",
    rule: "deny[0]",
  });
  // A deny rule catches any spelling of its method (some apps upper-case before routing).
  assertEquals(
    evaluate(openWithBlocklist, { caller: BILLING, method: "delete", path: "/x" }).allowed,
    false,
  );
  assertEquals(evaluate(openWithBlocklist, { caller: BILLING, method: "GET", path: "/x" }), {
    allowed: true,
    reason: "default_allow",
    rule: null,
  });
  assertEquals(evaluate(null, { caller: BILLING, method: "GET", path: "/" }).allowed, true);
  assertEquals(
    evaluate(null, { caller: BILLING, method: "GET", path: "/" }, { noPolicy: "deny" }),
    { allowed: false, reason: "no_policy", rule: null },
  );
});

Deno.test("normalizePath(): table", () => {
  const rows: [string, string | null][] = [
    ["/", "/"],
    ["/a/b", "/a/b"],
    ["/a/b/", "/a/b/"],
    ["/a//b", "/a/b"],
    ["/a/./b", "/a/b"],
    ["/a/../b", "/b"],
    ["/../../b", "/b"],
    ["/a/%2E%2e/b", "/b"],
    ["/a/b?x=../y", "/a/b"],
    ["/a/..", "/"],
    ["*", null],
    ["a/b", null],
    ["https://h:1/p?q", "/p"],
    ["/a/b?x=1#f", "/a/b"],
    ["/a/b#f", "/a/b"],
    ["/a.b/c..d/.hidden", "/a.b/c..d/.hidden"],
    ["/a/..?q=1", "/"],
    ["/a/b/.?q", "/a/b/"],
    // Backslashes are separators to WHATWG parsers, `;params` vanish in servlet containers.
    ["/public/..\\admin", "/admin"],
    ["/public\\..\\admin", "/admin"],
    ["/public/..;/admin", "/admin"],
    ["/admin;x", "/admin"],
    ["/a;x/b;y=1/c", "/a/b/c"],
    // Encoded separators and NUL mean different things to different servers: refused.
    ["/a%2Fb", null],
    ["/internal%2fx", null],
    ["/admin%3bx/y", null],
    ["/admin%3Bx/y", null],
    ["/a%5Cb", null],
    ["/a%00b", null],
  ];
  for (const [input, want] of rows) assertEquals(normalizePath(input), want, input);
});

Deno.test("deniedResponse() and deniedHttp1() say why and which proxy", async () => {
  const d = evaluate(ledger, { caller: BILLING, method: "POST", path: "/charge" });
  const res = deniedResponse(d, { proxyNode: "vm-12" });
  assertEquals(res.status, 403);
  assertEquals(res.headers.get("x-skein-denied"), "default_deny");
  assertEquals(res.headers.get("x-skein-proxy"), "vm-12");
  assertMatch(await res.text(), /denied by policy: default_deny/);
  const raw = new TextDecoder().decode(deniedHttp1(d, { proxyNode: "vm-12\r\nx-evil: 1" }));
  assert(raw.startsWith("HTTP/1.1 403 Forbidden\r\n"));
  assert(raw.includes("\r\nx-skein-denied: default_deny\r\n"));
  assert(raw.includes("\r\nx-skein-proxy: vm-12x-evil:1\r\n"), "header injection stripped");
  const [head, body] = raw.split("\r\n\r\n") as [string, string];
  assertMatch(
    head,
    new RegExp(`content-length: ${new TextEncoder().encode(body).length}\\r?$`, "m"),
  );
});

Deno.test("auditLine(): one JSON line per denial, allows only on request", () => {
  const deny = evaluate(ledger, { caller: BILLING, method: "POST", path: "/charge" });
  const allow = evaluate(ledger, { caller: PAYMENTS, method: "POST", path: "/charge" });
  assert(shouldAudit(ledger, deny));
  assert(!shouldAudit(ledger, allow));
  assert(shouldAudit(openWithBlocklist, allow));
  const line = auditLine({
    time: Date.UTC(2026, 0, 1),
    caller: BILLING.uri,
    service: "ledger",
    method: "POST",
    path: '/charge?card=4242\n{"fake":1}',
    decision: deny,
  });
  assert(!line.includes("\n"));
  assertEquals(JSON.parse(line), {
    time: "2026-01-01T00:00:00.000Z",
    type: "authz",
    caller: "spiffe://skein.local/svc/billing",
    service: "ledger",
    method: "POST",
    path: "/charge",
    decision: "deny",
    reason: "default_deny",
    rule: null,
  });
});

Deno.test("evaluate(): bypass attempts found in review are decided on the canonical path", () => {
  const denyAdmin = compileAuthorization(
    Authorization.parse({
      kind: "Authorization",
      service: "ledger",
      default: "allow",
      deny: [{ from: ["*"], methods: ["GET"], paths: ["/admin", "/internal/*"] }],
    }),
    { trustDomain: TD },
  );
  const go = (pol: typeof ledger, method: string, path: string) =>
    evaluate(pol, { caller: BILLING, method, path }).allowed;
  // An allow-list: only GET /public/* for billing.
  for (const p of ["/public/..\\admin", "/public/..;/admin", "/public/%2e%2e/admin"]) {
    assertEquals(go(ledger, "GET", p), false, p);
  }
  assertEquals(go(ledger, "GET", "/public/x"), true);
  assertEquals(go(ledger, "HEAD", "/public/x"), true, "HEAD rides on an allowed GET");
  // A deny-list.
  for (
    const p of ["/admin", "/admin/", "/admin;x", "/internal;/x", "/internal%2Fx", "/x/../admin"]
  ) {
    assertEquals(go(denyAdmin, "GET", p), false, p);
  }
  assertEquals(go(denyAdmin, "HEAD", "/admin"), false, "a denied GET is denied as HEAD too");
  assertEquals(go(denyAdmin, "POST", "/admin"), true, "other methods are not in the rule");
  assertEquals(go(denyAdmin, "GET", "/administrator"), true);
});

Deno.test("unreadableAuthorization() denies every call and tunnel, and is audited", () => {
  const p = unreadableAuthorization("ledger");
  for (const caller of [PAYMENTS, BILLING, CP1]) {
    for (const [method, path] of [["GET", "/public/x"], ["POST", "/charge"], ["GET", "*"]]) {
      const d = evaluate(p, { caller, method: method!, path: path! });
      assertEquals(d, { allowed: false, reason: "policy_unreadable", rule: null });
      assert(shouldAudit(p, d));
    }
    assertEquals(evaluateTcp(p, caller).reason, "policy_unreadable");
  }
  // No identity is still reported as such.
  assertEquals(evaluate(p, { caller: null, method: "GET", path: "/" }).reason, "no_identity");
});
