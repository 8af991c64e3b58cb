/**
 * The release binary embeds what the program loads at run time: every worker module it starts
 * is in `deno task compile`'s includes, and no `import()` hides its module from the compiler.
 */
import { assert, assertEquals } from "./assert.ts";
import { ASSET_DIRS, compileArgs, INCLUDES } from "../cmd/compile.ts";
import { STATIC_DIR } from "../control/dashboard/routes.ts";
import { V8_FLAGS_ARG } from "../cmd/v8_flags.ts";
import { computedImports, runtimeGraph, workerModules } from "./module_graph.ts";

Deno.test("compile includes every worker module the program starts, and nothing else", async () => {
  const g = await runtimeGraph(["cmd/skein.ts"], { dynamic: true });
  // The graph is the whole program: every subcommand, loaded through its dynamic import.
  for (const m of ["cmd/proxy.ts", "cmd/control.ts", "cmd/ctl.ts", "mesh/proxy/workers.ts"]) {
    assert(g.modules.has(m), `${m} is not in the program's graph`);
  }
  assertEquals([...g.workers].sort(), [...INCLUDES].sort());
  const args = compileArgs("x86_64-unknown-linux-gnu", "skein-linux-x64");
  for (const m of INCLUDES) {
    assert(args.join(" ").includes(`--include ${m}`), `compile args miss ${m}: ${args}`);
  }
  assert(args.includes(V8_FLAGS_ARG));
  assertEquals(args.at(-1), "cmd/skein.ts");
});

Deno.test("compile embeds the dashboard's static files, which the control node reads at run time", () => {
  const root = new URL("../", import.meta.url).pathname;
  const dir = STATIC_DIR.pathname.slice(root.length).replace(/\/$/, "");
  assertEquals([...ASSET_DIRS], [dir]);
  const args = compileArgs("x86_64-unknown-linux-gnu", "skein-linux-x64").join(" ");
  assert(args.includes(`--include ${dir}`), args);
});

Deno.test("no module of the program imports a computed specifier the compiler cannot see", async () => {
  const g = await runtimeGraph(["cmd/skein.ts"], { dynamic: true });
  assertEquals(g.computed, []);
});

Deno.test("the graph scanners find worker entries and computed imports", () => {
  const src = [
    `const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });`,
    `const { a } = await import("./a.ts");`,
    "const b = await import(name);",
  ].join("\n");
  assertEquals(workerModules(src, "file:///r/mesh/proxy/workers.ts"), [
    "file:///r/mesh/proxy/worker.ts",
  ]);
  assertEquals(computedImports(src), ["import(name)"]);
});
