/** A test process's shared CA seed (a CA key on disk) is removed when the process ends. */
import { assert, assertEquals } from "./assert.ts";

Deno.test("the shared CA seed directory is gone after the test run", async () => {
  const child = new URL("./fixtures/seed_user.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "--no-check", child],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, text + new TextDecoder().decode(out.stderr));
  const dir = text.match(/seed-dir (\S+)/)?.[1];
  assert(dir, text);
  assert(!(await Deno.stat(dir).then(() => true, () => false)), `${dir} still exists`);
});
