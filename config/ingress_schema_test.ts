import { assertEquals, assertMatch, assertThrows } from "../tests/assert.ts";
import { ConfigError, parseConfigText, ProxyConfig } from "./mod.ts";

const GW = "node: gw-1\ncontrol: [https://10.0.0.1:7400]\ngateway: edge\ningress:\n";

function parse(text: string) {
  return parseConfigText(text, "proxy.yaml", ProxyConfig);
}

function refused(text: string, pattern: RegExp): void {
  const err = assertThrows(() => parse(text), ConfigError);
  assertMatch(err.message, pattern);
}

Deno.test("ProxyConfig reads ingress listeners, one or several certificates, and defaults", () => {
  const cfg = parse(
    GW +
      "  - listen: 0.0.0.0:8443\n    tls: { cert_file: /a.pem, key_file: /a.key }\n" +
      "    routes: [{ host: Shop.Example.com, service: web }]\n" +
      "  - listen: 0.0.0.0:9443\n    tls:\n      certificates: [{ cert_file: /a.pem, key_file: /a.key }, { cert_file: /b.pem, key_file: /b.key }]\n" +
      "      reload_interval: 500ms\n    routes: [{ host: '*.example.com', path_prefix: /api, service: api }]\n" +
      "  - { listen: 0.0.0.0:80, redirect_https: 443 }\n",
  );
  assertEquals(cfg.gateway, "edge");
  const [a, b, c] = cfg.ingress;
  assertEquals(a!.tls, {
    certificates: [{ cert_file: "/a.pem", key_file: "/a.key" }],
    reload_interval: 2000,
  });
  assertEquals(a!.routes, [{ host: "shop.example.com", path_prefix: "/", service: "web" }]);
  assertEquals(a!.limits.max_connections_per_address, 64);
  assertEquals(b!.tls!.certificates.length, 2);
  assertEquals(b!.tls!.reload_interval, 500);
  assertEquals([c!.tls, c!.redirect_https, c!.routes], [undefined, 443, []]);
});

Deno.test("ProxyConfig refuses unknown ingress keys and shapes it does not act on", () => {
  const cases: [string, RegExp][] = [
    ["  - { listen: 0.0.0.0:80, routes: [{ service: web }], timeout: 5s }\n", /timeout/],
    ["  - { listen: 0.0.0.0:80, routes: [{ service: web, rewrite: / }] }\n", /rewrite/],
    ["  - { listen: 0.0.0.0:80, routes: [{ service: web }], limits: { max_rps: 5 } }\n", /max_rps/],
    [
      "  - { listen: 0.0.0.0:80, tls: { cert_file: /a.pem, key_file: /a.key, ciphers: x }, routes: [{ service: web }] }\n",
      /ciphers/,
    ],
    [
      "  - { listen: 0.0.0.0:80, tls: { cert_file: /a.pem }, routes: [{ service: web }] }\n",
      /key_file: expected both/,
    ],
    [
      "  - { listen: 0.0.0.0:80, tls: { reload_interval: 1s }, routes: [{ service: web }] }\n",
      /expected cert_file and key_file, or certificates/,
    ],
    ["  - { listen: 0.0.0.0:80 }\n", /expected at least one route/],
    [
      "  - { listen: 0.0.0.0:80, redirect_https: 443, routes: [{ service: web }] }\n",
      /routes nothing/,
    ],
    [
      "  - { listen: 0.0.0.0:80, redirect_https: 443, tls: { cert_file: /a, key_file: /b } }\n",
      /plain listener/,
    ],
    ["  - { listen: 0.0.0.0:80, routes: [{ host: 'a b', service: web }] }\n", /host name/],
    ["  - { listen: 0.0.0.0:80, routes: [{ path_prefix: api, service: web }] }\n", /starting with/],
    [
      "  - { listen: 0.0.0.0:80, routes: [{ service: web }, { path_prefix: /, service: api }] }\n",
      /already routes/,
    ],
  ];
  for (const [entry, pattern] of cases) refused(GW + entry, pattern);
});

Deno.test("ProxyConfig ties ingress to a gateway identity that fronts no services", () => {
  refused(
    "node: gw-1\ncontrol: [https://10.0.0.1:7400]\ningress:\n  - { listen: 0.0.0.0:80, routes: [{ service: web }] }\n",
    /ingress: ingress needs gateway: NAME/,
  );
  refused(
    "node: gw-1\ncontrol: [https://10.0.0.1:7400]\ngateway: edge\nservices: [{ name: web, port: 8080 }]\n",
    /services: a gateway proxy fronts no services/,
  );
});
