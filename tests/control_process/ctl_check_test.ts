/** `skein ctl check` against a real three-node cluster: healthy, then with one node stopped. */
import { assert, assertEquals } from "../assert.ts";
import { runSkein } from "../skein_cli.ts";
import { ProcessCluster, waitFor } from "./cluster.ts";

Deno.test("ctl check passes on a healthy cluster and names a stopped control node with its fix", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.waitAdminToken(c.ids()[0]!, leader);
    const check = (via: string) =>
      runSkein(["ctl", "check", "--control", c.api(via), "--token-file", c.tokenFile("cp-1")]);
    // Every node's API address reaches the others through Raft; until then check says so.
    const healthy = await waitFor("a clean check", 20_000, async () => {
      const r = await check(leader);
      return r.code === 0 ? r : undefined;
    });
    assert(healthy.stdout.startsWith("ok: 3/3 control nodes answer"), healthy.stdout);

    const victim = c.ids().find((id) => id !== leader)!;
    await c.signal(victim, "SIGTERM");
    const r = await check(leader);
    assertEquals(r.code, 1, r.stdout + r.stderr);
    const line = r.stdout.split("\n").find((l) => l.includes(`control node ${victim}`));
    assert(line?.includes("does not answer"), r.stdout);
    assert(r.stdout.includes(`skein ctl members remove ${victim}`), r.stdout);
    // Two of three still make a quorum: only the stopped node is a problem.
    assert(!r.stdout.includes("quorum needs"), r.stdout);
  } finally {
    await c.destroy();
  }
});
