/**
 * `skein demo` stopped the way a terminal's Ctrl-C stops it: one SIGINT to the whole process
 * group, so the demo and every child (control nodes, proxies, apps) get it at the same moment,
 * then the demo SIGTERMs its children in order. Nothing failed, so it must not say so.
 */
import { assert, assertEquals } from "../assert.ts";
import { SKEIN_ENTRY } from "../skein_cli.ts";
import { waitFor } from "./helpers.ts";

/** How long the demo may take to stop before the test calls it hung and kills the group. */
const HUNG_AFTER_MS = 60_000;

/** Sends `signal` to every process of the group `pgid`. */
async function killGroup(pgid: number, signal: string): Promise<void> {
  await new Deno.Command("kill", { args: [`-${signal}`, "--", `-${pgid}`] }).output();
}

Deno.test("Ctrl-C to the demo's whole process group: it stops with exit 0 and reports no failure", async () => {
  // setsid gives the demo its own process group, as a shell gives a foreground job.
  const proc = new Deno.Command("setsid", {
    args: [Deno.execPath(), "run", "--allow-all", "--quiet", SKEIN_ENTRY, "demo"],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let out = "";
  let errText = "";
  const reading = (async () => {
    for await (const c of proc.stdout) out += dec.decode(c, { stream: true });
  })();
  const errs = (async () => {
    for await (const c of proc.stderr) errText += dec.decode(c, { stream: true });
  })();
  let hung = false;
  try {
    await waitFor("the demo banner", () => out.includes("working directory:"), 90_000);
    const dir = out.match(/working directory: (\S+)/)![1]!;
    // The first load report: the mesh has been serving for a while, with a settled leader.
    await waitFor("a load report", () => out.includes("load: "), 60_000);
    const stat = await Deno.readTextFile(`/proc/${proc.pid}/stat`);
    const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    assertEquals(pgid, proc.pid, "the demo leads its own process group");
    const bound = setTimeout(() => {
      hung = true;
      killGroup(pgid, "KILL");
    }, HUNG_AFTER_MS);
    await killGroup(pgid, "INT");
    const st = await proc.status;
    clearTimeout(bound);
    await reading;
    await errs;
    assert(!hung, `the demo did not stop within ${HUNG_AFTER_MS} ms:\n${errText}`);
    assertEquals(st.code, 0, errText);
    assert(errText.includes("skein demo: stopped"), errText);
    assert(!errText.includes("something failed"), errText);
    assert(!(await Deno.stat(dir).then(() => true, () => false)), `${dir} was removed`);
  } finally {
    // Whatever is left of the group (nothing, when the test passed) goes.
    await killGroup(proc.pid, "KILL");
    await proc.status;
    await reading.catch(() => {});
    await errs.catch(() => {});
  }
});
