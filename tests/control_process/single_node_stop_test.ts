/** A single control node stops without claiming a handoff failure: it has nobody to hand to. */
import { assert, assertEquals } from "../assert.ts";
import { startControl } from "../proxy_process/helpers.ts";

Deno.test("a single-node control plane stops cleanly without 'no successor' in its log", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cp = await startControl(dir);
    const st = await cp.child.stop("SIGTERM");
    await cp.child.waitLine(/msg=stopped/);
    const log = cp.child.lines.join("\n");
    assertEquals(st.code, 0, log);
    assert(!log.includes("no successor"), log);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
