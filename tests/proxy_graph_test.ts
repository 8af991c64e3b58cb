/**
 * A proxy loads only what it uses: `skein proxy` never loads the control plane, the operator
 * CLI, hono, the X.509 library or any config file's schema, loader or YAML parser (proxy.yaml is
 * read in a child process, cmd/proxy_config_child.ts), and a data-plane worker
 * isolate loads no schema library, no YAML loader, no discovery and no identity code (the main
 * thread validates and hands it plain data). Each of those costs every isolate megabytes.
 */
import { assert, assertEquals } from "./assert.ts";
import { runtimeGraph } from "./module_graph.ts";

/** Never in a proxy process. */
const NOT_IN_PROXY = [
  /^control\//,
  /^cmd\/(control|ctl|demo|ca|check_config|compile)\.ts$/,
  /^cmd\/ctl\//,
  /^config\/(mod|control_schema|loader|proxy_schema|ingress_schema|yaml_syntax)\.ts$/,
  /^cmd\/(load_config|config_dump)\.ts$/,
  /^npm:\/?yaml@/,
  /^npm:\/?hono@/,
  /^npm:\/?@peculiar\//,
  /^npm:\/?reflect-metadata@/,
  /^(tests|bench)\//,
];

/** Never in a data-plane worker isolate, beyond the above. */
const NOT_IN_WORKER = [
  ...NOT_IN_PROXY,
  /^npm:\/?zod@/,
  /^config\/(resource_schema|fields)\.ts$/,
  /^mesh\/discovery\//,
  /^mesh\/identity\//,
  /^common\/tls\/control_https\.ts$/,
  /^node:https?$/,
];

function _offending(modules: Set<string>, rules: RegExp[]): string[] {
  return [...modules].filter((m) => rules.some((r) => r.test(m))).sort();
}

Deno.test("`skein` itself loads no command's code before it knows which command runs", async () => {
  const g = await runtimeGraph(["cmd/skein.ts"], { dynamic: false });
  assertEquals(
    [...g.modules].filter((m) =>
      !/^(cmd\/(skein|cli\/(args|help_text|io))|common\/log|config\/suggest)\.ts$/.test(m)
    ),
    [],
  );
});

Deno.test("`skein proxy` loads no control-plane, CLI, hono, X.509, YAML or config-file code", async () => {
  const g = await runtimeGraph(["cmd/skein.ts", "cmd/proxy.ts"], { dynamic: false });
  assert(g.modules.has("mesh/proxy/proxy.ts"), "the proxy's graph was not followed");
  assertEquals(_offending(g.modules, NOT_IN_PROXY), []);
  assertEquals([...g.workers], ["mesh/proxy/worker.ts"]);
});

Deno.test("a data-plane worker loads no schema library, YAML, discovery or identity code", async () => {
  // The HTTP/2 code (node:http2, and node:http for h2 calls to HTTP/1.1 apps and for HTTP/1.1
  // calls to h2 apps) loads with the first connection that needs it: checked by the next test.
  const g = await runtimeGraph(["mesh/proxy/worker.ts"], {
    dynamic: true,
    lazy: ["mesh/h2/lazy.ts", "mesh/proxy/h2_app_bridges.ts"],
  });
  assert(g.modules.has("mesh/forward/forwarder.ts"), "the worker's graph was not followed");
  assertEquals(_offending(g.modules, NOT_IN_WORKER), []);
});

Deno.test("an HTTP/1 proxy loads no HTTP/2 code: the h2 codec comes only with the first h2 connection", async () => {
  const h2Code = [/^node:http2$/, /^mesh\/h2\/(?!lazy\.ts$)/];
  for (const entry of [["cmd/skein.ts", "cmd/proxy.ts"], ["mesh/proxy/worker.ts"]]) {
    const g = await runtimeGraph(entry, { dynamic: false });
    assert(g.modules.has("mesh/h2/lazy.ts"), `${entry}: the h2 loader is not in the graph`);
    assertEquals(_offending(g.modules, h2Code), [], `${entry} loads h2 code at start`);
  }
  // It is there to be loaded, behind the dynamic import; the framing is skein's own codec.
  const all = await runtimeGraph(["mesh/proxy/worker.ts"], { dynamic: true });
  assert(all.modules.has("mesh/h2/gateway.ts") && all.modules.has("mesh/h2/wire/connection.ts"));
  assertEquals(all.modules.has("node:http2"), false, "node:http2 is not on any data-plane path");
});
