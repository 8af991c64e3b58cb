import { assert, assertEquals, assertMatch } from "./assert.ts";

const root = new URL("../", import.meta.url);
const read = (p: string) => Deno.readTextFile(new URL(p, root));

Deno.test("the Deno version is pinned once and the Dockerfile and CI follow it", async () => {
  const pinned = (await read(".deno-version")).trim();
  assertMatch(pinned, /^\d+\.\d+\.\d+$/);
  const docker = await read("Dockerfile");
  assertEquals(/ARG DENO_VERSION=(\S+)/.exec(docker)?.[1], pinned);
  assert((await read(".ci/run")).includes(".deno-version"));
});

Deno.test("the Dockerfile runs as non-root and exposes the SPEC's ports", async () => {
  const docker = await read("Dockerfile");
  assertMatch(docker, /^FROM denoland\/deno:\$\{DENO_VERSION\}$/m);
  assertMatch(docker, /^USER deno$/m);
  const exposed = /^EXPOSE (.*)$/m.exec(docker)?.[1]?.split(/\s+/).map(Number).sort();
  assertEquals(exposed, [15000, 15001, 15443, 7400, 7401].sort());
  for (const m of docker.matchAll(/^COPY (\S+)\/ /gm)) {
    const stat = await Deno.stat(new URL(m[1]! + "/", root));
    assert(stat.isDirectory, `Dockerfile copies missing folder ${m[1]}`);
  }
});

Deno.test("deno.json has the tasks the README and CI rely on", async () => {
  const cfg = JSON.parse(await read("deno.json"));
  for (const t of ["skein", "test", "check", "bench", "compile", "demo"]) {
    assert(typeof cfg.tasks[t] === "string", `task ${t} missing`);
  }
  assertMatch(cfg.tasks.skein, /cmd\/skein\.ts$/);
  const readme = await read("README.md");
  assert(readme.includes("deno task test"));
});
