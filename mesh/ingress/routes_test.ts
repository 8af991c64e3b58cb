import { assertEquals } from "../../tests/assert.ts";
import { IngressRoutes, normalizeHost, prefixMatches } from "./routes.ts";

const table = new IngressRoutes([
  { host: "shop.example.com", path_prefix: "/", service: "frontend" },
  { host: "shop.example.com", path_prefix: "/api", service: "api" },
  { host: "shop.example.com", path_prefix: "/api/v2/", service: "api-v2" },
  { host: "*.example.com", path_prefix: "/", service: "tenant" },
  { host: "*.eu.example.com", path_prefix: "/", service: "tenant-eu" },
  { path_prefix: "/status", service: "status" },
]);

Deno.test("IngressRoutes.match() picks the most specific host, then the longest prefix", () => {
  const cases: [string | null, string, string | null][] = [
    ["shop.example.com", "/", "frontend"],
    ["SHOP.example.com:8443", "/api", "api"],
    ["shop.example.com.", "/api/orders?x=1", "api"],
    ["shop.example.com", "/api?x", "api"],
    ["shop.example.com", "/apix", "frontend"],
    ["shop.example.com", "/api/v2/x", "api-v2"],
    ["shop.example.com", "/api/v2", "api"],
    // An exact host's routes are the only ones considered for it (no fall-through).
    ["shop.example.com", "/status", "frontend"],
    ["a.example.com", "/x", "tenant"],
    ["a.b.example.com", "/x", "tenant"],
    ["x.eu.example.com", "/", "tenant-eu"],
    // The wildcard is below the name, not the name itself.
    ["example.com", "/status", "status"],
    ["example.com", "/", null],
    [null, "/status/x", "status"],
    ["[::1]:80", "/status", "status"],
    ["bad host!", "/status", "status"],
  ];
  for (const [host, path, want] of cases) {
    assertEquals(table.match(host, path), want, `${host} ${path}`);
  }
});

Deno.test("IngressRoutes.services() lists each routed service once", () => {
  assertEquals(
    table.services().sort(),
    ["api", "api-v2", "frontend", "status", "tenant", "tenant-eu"],
  );
});

Deno.test("normalizeHost() lower-cases and drops the port and a trailing dot", () => {
  assertEquals(normalizeHost("Shop.Example.com:443"), "shop.example.com");
  assertEquals(normalizeHost("shop.example.com."), "shop.example.com");
  assertEquals(normalizeHost("shop:x"), null);
  assertEquals(normalizeHost("a b"), null);
  assertEquals(normalizeHost(null), null);
});

Deno.test("prefixMatches() matches whole segments", () => {
  assertEquals(prefixMatches("/", "/anything"), true);
  assertEquals(prefixMatches("/a", "/a"), true);
  assertEquals(prefixMatches("/a", "/a/b"), true);
  assertEquals(prefixMatches("/a", "/a?q"), true);
  assertEquals(prefixMatches("/a", "/ab"), false);
  assertEquals(prefixMatches("/a/", "/a/b"), true);
  assertEquals(prefixMatches("/a/", "/a"), false);
});
