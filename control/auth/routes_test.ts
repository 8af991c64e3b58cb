import { assertEquals } from "../../tests/assert.ts";
import { authorizeRoute, type Principal, requiredRole, type RouteRequirement } from "./mod.ts";

type Want =
  | "public"
  | "read"
  | "operator"
  | "admin"
  | "join"
  | "read+proxy"
  | "op+proxy"
  | "op+own";

function short(r: RouteRequirement): Want {
  if (r.kind === "public") return "public";
  if (r.kind === "join_token_or_cert") return "join";
  if (r.proxy === "any") return r.role === "read" ? "read+proxy" : "op+proxy";
  if (r.proxy === "own_service") return "op+own";
  return r.role;
}

Deno.test("requiredRole() maps every SPEC route to its requirement", () => {
  const table: [string, string, Want][] = [
    ["GET", "/v1/health", "public"],
    ["GET", "/metrics", "public"],
    ["GET", "/ui/", "public"],
    ["GET", "/ui/app.js", "public"],
    ["POST", "/ui/", "admin"],
    ["GET", "/v1/dashboard", "read"],
    ["GET", "/v1/members", "read"],
    ["POST", "/v1/members", "admin"],
    ["DELETE", "/v1/members/cp-3", "admin"],
    ["GET", "/v1/services", "read+proxy"],
    ["GET", "/v1/services/ledger", "read+proxy"],
    ["HEAD", "/v1/services/ledger", "read+proxy"],
    ["PUT", "/v1/services/ledger/instances/i-1", "op+own"],
    ["DELETE", "/v1/services/ledger/instances/i-1", "op+own"],
    ["PUT", "/v1/heartbeat", "op+proxy"],
    ["GET", "/v1/catalog", "read+proxy"],
    ["GET", "/v1/catalog?index=7&wait=30s", "read+proxy"],
    ["GET", "/v1/ca/roots?x=1", "public"],
    ["PUT", "/v1/resources", "operator"],
    ["GET", "/v1/resources", "read+proxy"],
    ["GET", "/v1/resources/Policy/ledger", "read+proxy"],
    ["DELETE", "/v1/resources/Policy/ledger", "operator"],
    ["POST", "/v1/resources/Policy/ledger/rollback", "operator"],
    ["GET", "/v1/ca/roots", "public"],
    ["POST", "/v1/ca/sign", "join"],
    ["POST", "/v1/ca/rotate", "admin"],
    ["POST", "/v1/ca/revoke", "admin"],
    ["GET", "/v1/tokens", "admin"],
    ["POST", "/v1/tokens", "admin"],
    ["DELETE", "/v1/tokens/abc", "admin"],
    ["GET", "/v1/nothing-here", "admin"],
    ["POST", "/v1/health", "admin"],
    ["GET", "/etc/passwd", "admin"],
  ];
  for (const [m, p, want] of table) assertEquals(short(requiredRole(m, p)), want, `${m} ${p}`);
  const own = requiredRole("PUT", "/v1/services/ledger/instances/i-1");
  assertEquals(own.kind === "role" ? own.service : null, "ledger");
});

Deno.test("authorizeRoute() answers 401 without credentials and 403 for too little", () => {
  const anon: Principal = { kind: "anonymous" };
  const reader: Principal = { kind: "operator", role: "read", tokenId: "r" };
  const op: Principal = { kind: "operator", role: "operator", tokenId: "o" };
  const admin: Principal = { kind: "operator", role: "admin", tokenId: "a" };
  const ledgerProxy: Principal = {
    kind: "proxy",
    service: "ledger",
    spiffeId: "spiffe://skein.local/svc/ledger",
  };
  const cp: Principal = {
    kind: "control",
    node: "cp-2",
    spiffeId: "spiffe://skein.local/control/cp-2",
  };
  const cases: [string, string, Principal, true | 401 | 403][] = [
    ["GET", "/v1/health", anon, true],
    ["GET", "/v1/services", anon, 401],
    ["GET", "/v1/services", reader, true],
    ["PUT", "/v1/resources", reader, 403],
    ["PUT", "/v1/resources", op, true],
    ["POST", "/v1/members", op, 403],
    ["POST", "/v1/members", admin, true],
    ["GET", "/v1/catalog", ledgerProxy, true],
    ["PUT", "/v1/services/ledger/instances/x", ledgerProxy, true],
    ["PUT", "/v1/services/payments/instances/x", ledgerProxy, 403],
    ["PUT", "/v1/resources", ledgerProxy, 403],
    ["POST", "/v1/ca/sign", ledgerProxy, true],
    ["POST", "/v1/ca/sign", anon, 401],
    ["POST", "/v1/ca/sign", admin, 401],
    ["POST", "/v1/tokens", cp, 403],
  ];
  for (const [m, p, who, want] of cases) {
    const d = authorizeRoute(requiredRole(m, p), who);
    assertEquals(d.allowed ? true : d.status, want, `${m} ${p} as ${JSON.stringify(who)}`);
  }
});
