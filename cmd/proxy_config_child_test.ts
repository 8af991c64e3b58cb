import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createLogger } from "../common/log.ts";
import type { CommandIo } from "./cli/io.ts";
import { loadProxyConfigHere, notPlainJson } from "./config_dump.ts";
import { childEnv, childResult, readProxyConfig } from "./proxy_config_child.ts";

const EXAMPLE = new URL("../config/examples/proxy.yaml", import.meta.url).pathname;
const log = createLogger({ level: "error" });

function _io(env: Record<string, string>): CommandIo & { err: string[] } {
  const err: string[] = [];
  return { stdout: () => {}, stderr: (t) => err.push(t), env, err };
}

Deno.test("a child's exit: 0 is the JSON configuration, 2 the file's issues, else a failure", () => {
  assertEquals(
    childResult(0, '{"node":"a"}\n', ""),
    { kind: "config", config: { node: "a" } } as never,
  );
  assertEquals(childResult(2, "", "f:1:1: bad\n"), { kind: "invalid", issues: "f:1:1: bad\n" });
  assertEquals(childResult(1, "", " boom \n").kind, "failed");
  assertEquals(childResult(0, "not json", "").kind, "failed");
  assertEquals(childResult(0, "[1]", "").kind, "failed");
  assertEquals(childResult(0, "null", "").kind, "failed");
});

Deno.test("the child's environment: the command's view wins and no stray SKEIN_* leaks in", () => {
  const env = childEnv(
    { PATH: "/bin", SKEIN_NODE: "from-process", SKEIN_ZONE: "z" },
    { HOME: "/h", SKEIN_NODE: "from-command" },
    "/data",
  );
  assertEquals(env, {
    PATH: "/bin",
    HOME: "/h",
    SKEIN_NODE: "from-command",
    SKEIN_DATA_DIR: "/data",
  });
});

Deno.test("only plain data passes the JSON hand-over", () => {
  assertEquals(notPlainJson({ a: [1, "x", true, null, { b: undefined }] }), null);
  assertEquals(notPlainJson({ a: new Map() }), "$.a");
  assertEquals(notPlainJson({ a: [0, Infinity] }), "$.a[1]");
  assertEquals(notPlainJson({ f: () => 1 }), "$.f");
});

Deno.test("proxy.yaml read in a child process equals the file read in this one", async () => {
  const env = { ...Deno.env.toObject(), SKEIN_NODE: "edge-7" };
  const io = _io(env);
  const child = await readProxyConfig(EXAMPLE, "/tmp/skein-child-data", io, log);
  assertEquals(io.err, []);
  assert(child !== null);
  const here = await loadProxyConfigHere(EXAMPLE, "/tmp/skein-child-data", _io(env));
  assert(here !== null);
  // The schema's output is plain data, so nothing is lost on the way.
  assertEquals(notPlainJson(here), null);
  assertEquals(child, JSON.parse(JSON.stringify(here)));
  assertEquals(child.node, "edge-7");
  assertEquals(child.data_dir, "/tmp/skein-child-data");
});

Deno.test("an invalid proxy.yaml read in a child process reports every issue with its place", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = (await Deno.readTextFile(EXAMPLE)).replace(/^node: .*$/m, "node: [1, 2]");
    await Deno.writeTextFile(`${dir}/proxy.yaml`, text);
    const io = _io(Deno.env.toObject());
    assertEquals(await readProxyConfig(`${dir}/proxy.yaml`, undefined, io, log), null);
    assertMatch(io.err.join(""), /proxy\.yaml:\d+:\d+: node: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`skein proxy` without permission to start a process reads its file in place", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = (await Deno.readTextFile(EXAMPLE)).replace(/^node: .*$/m, "node: [1, 2]");
    await Deno.writeTextFile(`${dir}/proxy.yaml`, text);
    const entry = new URL("./skein.ts", import.meta.url).pathname;
    for (const run of [[], ["--allow-run"]]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          ...run,
          "--quiet",
          entry,
          "proxy",
          "--config",
          `${dir}/proxy.yaml`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 2, err);
      assertMatch(err, /proxy\.yaml:\d+:\d+: node: /);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
