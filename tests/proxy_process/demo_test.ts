/**
 * `skein demo` runs a whole mesh, traffic flows end to end, its printed `ctl` line runs, and a
 * Ctrl-C forwarded twice (as `deno task` does) still stops it cleanly with exit 0.
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals } from "../assert.ts";
import { spawnSkein } from "../skein_cli.ts";
import { waitFor } from "./helpers.ts";

Deno.test("skein demo serves traffic through the mesh and stops cleanly on a double SIGINT", async () => {
  const proc = spawnSkein(["demo"]);
  let out = "";
  const dec = new TextDecoder();
  const reading = (async () => {
    for await (const c of proc.stdout) out += dec.decode(c, { stream: true });
  })();
  let errText = "";
  const errs = (async () => {
    for await (const c of proc.stderr) errText += dec.decode(c, { stream: true });
    return errText;
  })();
  let stopped = false;
  try {
    await waitFor("the demo banner", () => out.includes("working directory:"), 90_000);
    const curl = out.match(/curl (http:\/\/127\.0\.0\.1:\d+)\//)![1]!;
    const dir = out.match(/working directory: (\S+)/)![1]!;
    // One request walks edge -> frontend -> orders -> inventory.
    const chain = await waitFor("a request through the whole chain", async () => {
      const res = await fetch(`${curl}/`);
      return res.status === 200 ? await res.json() : (await res.body?.cancel(), null);
    }, 90_000); // bounded, not timed: a loaded machine can print the banner before all are ready
    assertEquals(chain.service, "frontend");
    assertEquals(chain.next.service, "orders");
    assertEquals(chain.next.next.service, "inventory");
    // Every proxy listener binds port 0 and reports its address: no port is picked twice.
    for (const node of ["frontend-1", "orders-2", "inventory-1", "edge"]) {
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/${node}.yaml`));
      assertEquals([cfg.admin, cfg.inbound], ["127.0.0.1:0", "127.0.0.1:0"], node);
    }
    // The printed ctl line runs as printed, from where the demo was started.
    const ctlLine = out.match(/^ {2}(.* ctl services .*)$/m)![1]!;
    assert(ctlLine.startsWith("deno task skein ctl"), ctlLine);
    const ctl = await new Deno.Command("sh", { args: ["-c", ctlLine], stdin: "null" }).output();
    const ctlOut = new TextDecoder().decode(ctl.stdout);
    assertEquals(ctl.code, 0, new TextDecoder().decode(ctl.stderr));
    assert(ctlOut.includes("inventory"), ctlOut);
    // The load generator's traffic shows in the edge proxy's metrics.
    const edge = out.match(/edge\s+(http:\/\/\S+)\/metrics/)![1]!;
    await waitFor("load through the edge proxy", async () => {
      const m = parsePrometheusText(await (await fetch(`${edge}/metrics`)).text());
      const ok = m.get("skein_requests_total")!.samples.filter((s) =>
        s.labels.destination === "frontend" && s.labels.status_class === "2xx"
      ).reduce((n, s) => n + s.value, 0);
      return ok >= 10;
    }, 30_000);
    proc.kill("SIGINT");
    stopped = true;
    // A terminal's Ctrl-C under `deno task` arrives twice; the second must not cut the cleanup.
    await waitFor("the demo to start stopping", () => errText.includes("stopping"), 30_000);
    try {
      proc.kill("SIGINT");
    } catch (e) {
      throw new Error(`the demo was gone before the second SIGINT: ${errText}`, { cause: e });
    }
    const st = await proc.status;
    await reading;
    const stderr = await errs;
    assertEquals(st.code, 0, stderr);
    assert(stderr.includes("skein demo: stopped"));
    // The temp dir is gone and the edge proxy no longer answers.
    assert(!(await Deno.stat(dir).then(() => true, () => false)), `${dir} was removed`);
    assert(!stderr.includes("logs kept"), stderr);
    assert(!(await fetch(`${edge}/ready`).then(() => true, () => false)), "edge proxy stopped");
  } finally {
    if (!stopped) {
      try {
        proc.kill("SIGINT");
      } catch {
        // Already exited: its output says why.
        console.error(errText);
      }
      await proc.status;
    }
    await reading.catch(() => {});
    await errs.catch(() => {});
  }
});
