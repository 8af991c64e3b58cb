import { assertEquals, assertMatch, assertThrows } from "../tests/assert.ts";
import { ConfigError, parseConfigText, ProxyConfig, upstreamKey } from "./mod.ts";

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

const TWO = HEAD + "  - { name: alpha, port: 8001 }\n  - { name: beta, port: 8002 }\nupstreams:\n";

Deno.test("ProxyConfig: each upstream may name the local service it calls for", () => {
  const cfg = parseConfigText(
    TWO + "  - { service: ledger, listen: 127.0.0.1:9001 }\n" +
      "  - { service: ledger, listen: 127.0.0.1:9002, caller: beta }\n" +
      "  - { service: tax, listen: 127.0.0.1:9003, protocol: tcp, caller: beta }\n",
    "proxy.yaml",
    ProxyConfig,
  );
  assertEquals(cfg.upstreams.map(upstreamKey), ["ledger", "ledger@beta", "tax@beta"]);
  assertEquals(cfg.upstreams[0]!.caller, undefined);
});

Deno.test("ProxyConfig refuses a caller that is not a local service, with the line", () => {
  const err = assertThrows(
    () =>
      parseConfigText(
        TWO + "  - { service: ledger, listen: 127.0.0.1:9001, caller: gamma }\n",
        "proxy.yaml",
        ProxyConfig,
      ),
    ConfigError,
  );
  assertMatch(
    err.message,
    /proxy\.yaml:7:\d+: upstreams\[0\]\.caller: "gamma" is not a service of this proxy \(services: alpha, beta\)/,
  );
  const none = assertThrows(
    () =>
      parseConfigText(
        "node: vm-1\ncontrol: [https://10.0.0.1:7400]\nupstreams:\n" +
          "  - { service: ledger, listen: 127.0.0.1:9001, caller: alpha }\n",
        "proxy.yaml",
        ProxyConfig,
      ),
    ConfigError,
  );
  assertMatch(
    none.message,
    /upstreams\[0\]\.caller: "alpha" is not a service of this proxy \(it has no services\)/,
  );
});

Deno.test("ProxyConfig refuses two listeners making the same calls as the same service", () => {
  for (
    const second of [
      "  - { service: ledger, listen: 127.0.0.1:9002 }\n",
      // Without a caller the first service calls: naming it makes the same calls.
      "  - { service: ledger, listen: 127.0.0.1:9002, caller: alpha }\n",
      "  - { service: ledger, listen: 127.0.0.1:9002, protocol: tcp }\n",
    ]
  ) {
    const err = assertThrows(
      () =>
        parseConfigText(
          TWO + "  - { service: ledger, listen: 127.0.0.1:9001 }\n" + second,
          "proxy.yaml",
          ProxyConfig,
        ),
      ConfigError,
    );
    assertMatch(
      err.message,
      /upstreams\[1\]\.service: upstreams\[0\] already calls ledger as alpha; give each listener of one service its own caller/,
    );
  }
});

Deno.test("ProxyConfig reads access_log and telemetry, refusing what would be ignored", () => {
  const base = "node: vm-1\ncontrol: [https://10.0.0.1:7400]\n";
  const cfg = parseConfigText(
    base +
      "access_log: { path: stdout }\ntelemetry: { otlp: http://127.0.0.1:4318, sampling: always }\n",
    "proxy.yaml",
    ProxyConfig,
  );
  assertEquals(cfg.access_log, { path: "stdout", format: "json" });
  assertEquals(cfg.telemetry, { otlp: "http://127.0.0.1:4318", sampling: "always" });
  assertEquals(parseConfigText(base, "proxy.yaml", ProxyConfig).telemetry, {});
  const refused = (text: string, re: RegExp) => {
    const err = assertThrows(
      () => parseConfigText(base + text, "proxy.yaml", ProxyConfig),
      ConfigError,
    );
    assertMatch(err.message, re);
  };
  refused(
    "telemetry: { sampling: 0.5 }\n",
    /telemetry\.sampling.*no effect without telemetry\.otlp/s,
  );
  refused("telemetry: { otlp: http://c:4318, sampling: 2 }\n", /telemetry\.sampling/);
  refused("access_log: { path: /x.log, format: text }\n", /access_log\.format/);
  refused("access_log: /var/log/skein/access.log\n", /access_log/);
});

Deno.test("ProxyConfig: a service says how its app speaks (http, http2, grpc; not tcp)", () => {
  const cfg = parseConfigText(
    HEAD + "  - { name: alpha, port: 8001 }\n  - { name: beta, port: 8002, protocol: grpc }\n" +
      "  - { name: gamma, port: 8003, protocol: http2 }\n",
    "proxy.yaml",
    ProxyConfig,
  );
  assertEquals(cfg.services.map((s) => s.protocol), ["http", "grpc", "http2"]);
  const e = assertThrows(
    () =>
      parseConfigText(HEAD + "  - { name: alpha, port: 8001, protocol: tcp }\n", "p", ProxyConfig),
    ConfigError,
  );
  assertMatch(e.message, /services\[0\]\.protocol: expected one of "http", "http2", "grpc"/);
});

Deno.test("ProxyConfig refuses an HTTP/1.1 health check on an app declared http2 or grpc", () => {
  for (const protocol of ["http2", "grpc"]) {
    const e = assertThrows(
      () =>
        parseConfigText(
          HEAD + `  - { name: a, port: 8001, protocol: ${protocol}, health: { http: /h } }\n`,
          "p",
          ProxyConfig,
        ),
      ConfigError,
    );
    assertMatch(e.message, /services\[0\]\.health: health checks speak HTTP\/1\.1/);
  }
  parseConfigText(HEAD + "  - { name: a, port: 8001, health: { http: /h } }\n", "p", ProxyConfig);
});
