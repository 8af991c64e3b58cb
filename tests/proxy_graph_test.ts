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
  const g = await runtimeGraph(["mesh/proxy/worker.ts"], { dynamic: true });
  assert(g.modules.has("mesh/forward/forwarder.ts"), "the worker's graph was not followed");
  assertEquals(_offending(g.modules, NOT_IN_WORKER), []);
});
