import { assert, assertEquals } from "../../tests/assert.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { parseRequestHead } from "../http1/mod.ts";
import { Route as RouteSchema } from "../../config/resource_schema.ts";
import { compileRoute, pathOf, type RouteRule } from "./route_rules.ts";

function head(method: string, target: string, headers: Record<string, string> = {}) {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const b = new TextEncoder().encode(`${method} ${target} HTTP/1.1\r\nhost: x\r\n${lines}\r\n`);
  return parseRequestHead(b, 0, b.length);
}

function rules(r: Record<string, unknown>): RouteRule[] {
  return compileRoute(RouteSchema.parse({ kind: "Route", service: "ledger", ...r }));
}

/** The label and version the first matching rule gives, as the destination applies them. */
function first(rs: RouteRule[], h: ReturnType<typeof head>): [string, string | undefined] | null {
  for (const r of rs) if (r.matches(h)) return [r.label, r.version(h, () => 0)];
  return null;
}

Deno.test("rules match path, path_prefix, method and headers (exact and present); first match wins", () => {
  const rs = rules({
    rules: [
      { match: { path: "/exact" }, backends: [{ version: "p" }] },
      { match: { path_prefix: "/v2" }, backends: [{ version: "pp" }] },
      { match: { method: "post" }, backends: [{ version: "m" }] },
      { match: { headers: { "X-Canary": "1" } }, backends: [{ version: "h" }] },
      { match: { headers: { "x-debug": { present: true } } }, backends: [{ version: "hp" }] },
      { backends: [{ version: "d" }] },
    ],
  });
  assertEquals(first(rs, head("GET", "/exact?q=1")), ["rule-0", "p"]);
  assertEquals(first(rs, head("GET", "/exact/more")), ["rule-5", "d"]);
  assertEquals(first(rs, head("GET", "/v2/x")), ["rule-1", "pp"]);
  assertEquals(first(rs, head("GET", "http://ledger/v2/x")), ["rule-1", "pp"]);
  assertEquals(first(rs, head("POST", "/v2/x")), ["rule-1", "pp"], "first match wins");
  assertEquals(first(rs, head("POST", "/x")), ["rule-2", "m"]);
  assertEquals(first(rs, head("GET", "/x", { "x-canary": "1" })), ["rule-3", "h"]);
  assertEquals(first(rs, head("GET", "/x", { "x-canary": "2" })), ["rule-5", "d"]);
  assertEquals(first(rs, head("GET", "/x", { "x-debug": "" })), ["rule-4", "hp"]);
  assertEquals(first(rs, head("GET", "/x")), ["rule-5", "d"]);
  assertEquals(
    first(rules({ rules: [{ match: { path: "/a" }, backends: [{}] }] }), head("GET", "/b")),
    null,
  );
});

Deno.test("weights split within statistical bounds; a weight of 0 is never picked", () => {
  const [r] = rules({
    rules: [{
      backends: [{ version: "v1", weight: 95 }, { version: "v2", weight: 5 }, {
        version: "v3",
        weight: 0,
      }],
    }],
  });
  const random = seededRandom(7);
  const h = head("GET", "/");
  const n = 20_000;
  const seen = new Map<string | undefined, number>();
  for (let i = 0; i < n; i++) {
    const v = r!.version(h, random);
    seen.set(v, (seen.get(v) ?? 0) + 1);
  }
  // 5% of 20,000 = 1000, standard deviation ~31: four of them either way.
  const v2 = seen.get("v2") ?? 0;
  assert(v2 > 1000 - 124 && v2 < 1000 + 124, `v2 got ${v2}`);
  assertEquals(seen.get("v3"), undefined);
});

Deno.test("hash_on keeps one user on one version and spreads users over the weights", () => {
  const [r] = rules({
    rules: [{
      hash_on: { header: "x-user" },
      backends: [{ version: "v1", weight: 50 }, { version: "v2", weight: 50 }],
    }],
  });
  const random = seededRandom(3);
  const perVersion = new Map<string | undefined, number>();
  for (let u = 0; u < 400; u++) {
    const h = head("GET", "/", { "x-user": `user-${u}` });
    const v = r!.version(h, random);
    for (let k = 0; k < 5; k++) assertEquals(r!.version(h, random), v, `user-${u} moved`);
    perVersion.set(v, (perVersion.get(v) ?? 0) + 1);
  }
  // 400 users at 50/50: 200 each, standard deviation 10.
  const v1 = perVersion.get("v1") ?? 0;
  assert(v1 > 160 && v1 < 240, `v1 got ${v1} of 400 users`);
});

Deno.test("Route validation refuses weights summing to 0 and a percent over 100", () => {
  const zero = RouteSchema.safeParse({
    kind: "Route",
    service: "ledger",
    rules: [{ backends: [{ version: "v1", weight: 0 }] }],
  });
  assert(!zero.success);
  assertEquals(zero.error.issues[0]!.path, ["rules", 0, "backends"]);
  const pct = RouteSchema.safeParse({
    kind: "Route",
    service: "ledger",
    rules: [{ backends: [{}], fault: { abort: { percent: 101, status: 503 } } }],
  });
  assert(!pct.success);
});

Deno.test("pathOf drops the query and keeps an absolute-form target's path", () => {
  assertEquals(pathOf("/a/b?c=1"), "/a/b");
  assertEquals(pathOf("http://h:80/x?y"), "/x");
  assertEquals(pathOf("http://h"), "/");
});
