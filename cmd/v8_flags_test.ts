import { assert, assertEquals } from "../tests/assert.ts";
import { compileArgs } from "./compile.ts";
import { skeinCommand } from "./demo.ts";
import { V8_FLAGS, V8_FLAGS_ARG } from "./v8_flags.ts";

const root = new URL("../", import.meta.url);

Deno.test("the V8 flags reach every way skein is started", async () => {
  assertEquals(V8_FLAGS_ARG, "--v8-flags=--no-memory-reducer");
  assert(V8_FLAGS.every((f) => f.startsWith("--")));
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks;
  for (const t of ["skein", "demo"]) {
    assert(tasks[t].includes(` ${V8_FLAGS_ARG} `), `deno task ${t}: ${tasks[t]}`);
  }
  const docker = await Deno.readTextFile(new URL("Dockerfile", root));
  const entry = docker.split("\n").find((l) => l.startsWith("ENTRYPOINT"));
  assert(entry?.includes(`"${V8_FLAGS_ARG}"`), `Dockerfile: ${entry}`);
  assert(compileArgs("x86_64-unknown-linux-gnu", "skein-linux-x64").includes(V8_FLAGS_ARG));
  // Tests run under deno, so the demo re-runs skein from source: with the flags.
  const demo = skeinCommand();
  assert(demo.fromSource && demo.prefix.includes(V8_FLAGS_ARG), `demo: ${demo.prefix}`);
});

Deno.test("deno run accepts the V8 flags", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", V8_FLAGS_ARG, "console.log('ok')"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(new TextDecoder().decode(out.stderr), "");
  assertEquals(new TextDecoder().decode(out.stdout).trim(), "ok");
});
