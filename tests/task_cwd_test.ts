/** `deno task skein …` reads relative paths from where the user stands, not the checkout root. */
import { assert, assertEquals } from "./assert.ts";
import { taskCwd } from "../cmd/task_cwd.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("taskCwd() moves back to INIT_CWD only from the checkout root", () => {
  assertEquals(taskCwd({ INIT_CWD: "/home/me" }, "/src/skein", "/src/skein/"), "/home/me");
  assertEquals(taskCwd({}, "/src/skein", "/src/skein/"), null);
  assertEquals(taskCwd({ INIT_CWD: "/home/me" }, "/elsewhere", "/src/skein/"), null);
});

Deno.test("deno task skein check-config takes a path relative to the user's directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(new URL("../config/examples/proxy.yaml", import.meta.url), `${dir}/p.yaml`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "--config", `${ROOT}deno.json`, "skein", "check-config", "p.yaml"],
      cwd: dir,
      // As from a shell: an INIT_CWD inherited from an outer `deno task test` would be kept.
      clearEnv: true,
      env: {
        ...Object.fromEntries(
          Object.entries(Deno.env.toObject()).filter(([k]) => k !== "INIT_CWD"),
        ),
        NO_COLOR: "1",
      },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 0, text);
    assert(text.includes("p.yaml: ok"), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
