/**
 * SIGHUP re-reads the configuration: the control node applies `log` and `limits` and names
 * keys that need a restart; an invalid file is refused and the running configuration kept;
 * a proxy survives a SIGHUP, applies what it can and says what needs a restart.
 */
import { assert, assertEquals } from "../assert.ts";
import { testFetch } from "../tls_fixture.ts";
import { startApp, startControl, startProxy, waitFor } from "./helpers.ts";

Deno.test("control SIGHUP: invalid file refused, log and limits applied, others named", async () => {
  const dir = await Deno.makeTempDir();
  const cp = await startControl(dir);
  try {
    const file = `${dir}/cp-1.yaml`;
    const cfg = JSON.parse(await Deno.readTextFile(file));
    const pid = cp.child.proc.pid;
    const hup = () => Deno.kill(pid, "SIGHUP");

    await Deno.writeTextFile(file, JSON.stringify({ ...cfg, limits: { max_body: "lots" } }));
    hup();
    const refused = await cp.child.waitLine(/configuration reload refused.*/);
    assert(refused[0].includes("limits.max_body"), refused[0]);
    const h = await testFetch(`${cp.url}/v1/health`);
    assertEquals(h.status, 200, "still serving after a refused reload");
    await h.body?.cancel();

    await Deno.writeTextFile(
      file,
      JSON.stringify({
        ...cfg,
        log: { level: "debug" },
        limits: { max_body: "2KiB" },
        raft_tuning: { ...cfg.raft_tuning, heartbeat: "60ms" },
      }),
    );
    hup();
    const done = await cp.child.waitLine(/configuration reloaded.*/);
    assert(done[0].includes("log.level=debug"), done[0]);
    assert(done[0].includes("limits.max_body=2048"), done[0]);
    assert(done[0].includes("needs_restart=raft_tuning"), done[0]);
    // The new body limit holds for the next request.
    const big = await testFetch(`${cp.url}/v1/resources`, {
      method: "PUT",
      headers: { authorization: `Bearer ${cp.token}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "Policy", service: "x".repeat(10), pad: "y".repeat(4096) }),
    });
    assertEquals(big.status, 413, await big.text());
  } finally {
    await cp.child.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proxy SIGHUP: keeps running, applies drain_timeout and names what needs a restart", async () => {
  const dir = await Deno.makeTempDir();
  const app = startApp("svc");
  const cp = await startControl(dir);
  try {
    const p = await startProxy(dir, {
      node: "vm-1",
      control: [cp.url],
      services: [{ name: "svc", port: app.port }],
    });
    try {
      const file = `${dir}/vm-1.yaml`;
      const cfg = JSON.parse(await Deno.readTextFile(file));
      await Deno.writeTextFile(
        file,
        JSON.stringify({ ...cfg, data_dir: `${dir}/elsewhere`, drain_timeout: "7s" }),
      );
      Deno.kill(p.child.proc.pid, "SIGHUP");
      // Each worker answers the reload; on a loaded machine one may take until the proxy's
      // WORKER_START_TIMEOUT_MS (15 s) to be heard from, so wait past that.
      const line = await p.child.waitLine(/configuration reloaded.*/, 60_000);
      assert(line[0].includes("needs_restart=data_dir"), line[0]);
      assert(line[0].includes("drain_timeout=7000"), line[0]);
      await waitFor("the proxy to answer /live", async () => {
        const r = await fetch(`http://${p.admin}/live`);
        await r.body?.cancel();
        return r.status === 200;
      });
    } finally {
      await p.child.stop();
    }
  } finally {
    await cp.child.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
