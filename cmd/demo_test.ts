/** `skein demo` start-up failures and the command lines it prints. */
import { assert, assertEquals } from "../tests/assert.ts";
import { createLogger } from "../common/log.ts";
import { runDemo } from "./demo.ts";
import { runnableSkein } from "./runnable.ts";

Deno.test("a child exiting during start-up is named with its last log lines, and only logs stay", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {} };
  // A "skein" whose control nodes fail the way a port clash does.
  const failing =
    "console.error('cannot listen for the API: Address already in use'); Deno.exit(3)";
  const code = await runDemo({
    io,
    log: createLogger({ level: "error", format: "logfmt", sink: () => {} }),
    skein: { cmd: Deno.execPath(), prefix: ["eval", failing], fromSource: true },
  });
  const text = err.join("");
  assertEquals(code, 1, text);
  const failed = text.match(/(cp-\d) exited with code 3 during start-up/)?.[1];
  assert(failed, text);
  assert(text.includes("Address already in use"), text);
  const dir = text.match(/logs kept in (\S+)\/logs/)?.[1];
  assert(dir, text);
  try {
    const left = [...Deno.readDirSync(dir)].map((e) => e.name);
    assertEquals(left, ["logs"], "the CA key and tokens are removed, the logs kept");
    assert(Deno.readTextFileSync(`${dir}/logs/${failed}.log`).includes("Address already in use"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  assert(text.includes("skein demo: stopped"), text);
});

Deno.test("the printed skein command runs where the user stands", () => {
  const src = { cmd: "/usr/bin/deno", fromSource: true };
  assertEquals(runnableSkein(src, "/src/skein", "/src/skein/"), "deno task skein");
  assertEquals(runnableSkein(src, "/src/skein/docs", "/src/skein"), "deno task skein");
  assertEquals(
    runnableSkein(src, "/home/me", "/src/skein"),
    "deno task --config /src/skein/deno.json skein",
  );
  assertEquals(
    runnableSkein(src, "/src/skein-other", "/src/skein"),
    "deno task --config /src/skein/deno.json skein",
  );
  assertEquals(
    runnableSkein({ cmd: "/opt/my skein", fromSource: false }, "/", "/x"),
    "'/opt/my skein'",
  );
});
