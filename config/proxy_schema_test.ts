import { assertEquals, assertMatch, assertThrows } from "../tests/assert.ts";
import { ConfigError, parseConfigText, ProxyConfig } from "./mod.ts";

const HEAD = "node: vm-1\ncontrol: [https://10.0.0.1:7400]\nservices:\n";

Deno.test("ProxyConfig accepts instances of several services (one identity per service)", () => {
  const cfg = parseConfigText(
    HEAD + "  - { name: alpha, port: 8001 }\n  - { name: beta, port: 8002 }\n" +
      "  - { name: alpha, id: alpha-2, port: 8003 }\n",
    "proxy.yaml",
    ProxyConfig,
  );
  assertEquals(cfg.services.map((s) => s.name), ["alpha", "beta", "alpha"]);
});

Deno.test("ProxyConfig still refuses two instances with the same id", () => {
  const err = assertThrows(
    () =>
      parseConfigText(
        HEAD + "  - { name: alpha, port: 8001 }\n  - { name: beta, port: 8002 }\n" +
          "  - { name: alpha, port: 8003 }\n",
        "proxy.yaml",
        ProxyConfig,
      ),
    ConfigError,
  );
  assertMatch(err.message, /services\[2\]\.name: duplicate local instance "alpha"/);
});
