/**
 * Runtime membership changes of real `skein control` processes: a fourth node started with
 * `join: true` is added, catches up, becomes a voter, and is removed again.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { runSkein } from "../skein_cli.ts";
import { ProcessCluster, request, waitFor, waitSameInstances } from "./cluster.ts";

interface _Member {
  node: string;
  address: string;
  api: string | null;
  voter: boolean;
}

async function _members(c: ProcessCluster, via: string): Promise<_Member[]> {
  const r = await request(
    `${c.api(via)}/v1/members`,
    "GET",
    undefined,
    undefined,
    await c.adminToken(),
  );
  assertEquals(r.status, 200);
  return r.json!.members as _Member[];
}

Deno.test("Add and remove a member at runtime: a joiner catches up, votes, and leaves", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const token = await c.waitAdminToken("cp-1", leader);
    // Enough data that the joiner really has something to catch up on.
    for (let i = 0; i < 40; i++) {
      const r = await c.register(c.ids()[i % 3]!, "members", `m-${i}`);
      assertEquals(r.status, 201, `m-${i}: ${JSON.stringify(r.json)}`);
    }
    const j = await c.addJoiner("cp-4");
    await c.start("cp-4");
    const h0 = await c.health("cp-4");
    assertEquals(h0?.leader, null, "a joiner does not know any leader before it is added");

    // Through a follower, so the request is forwarded to the leader.
    const follower = c.ids().find((id) => id !== leader && id !== "cp-4")!;
    const add = await request(
      `${c.api(follower)}/v1/members`,
      "POST",
      {
        node: "cp-4",
        address: `127.0.0.1:${j.raftPort}`,
        api: c.api("cp-4"),
      },
      30_000,
      token,
    );
    assertEquals(add.status, 201, `add: ${add.status} ${JSON.stringify(add.json)}`);

    await waitFor("cp-4 to be a voter on every node", 20_000, async () => {
      for (const id of c.ids()) {
        const ms = await _members(c, id);
        if (!ms.some((m) => m.node === "cp-4" && m.voter)) return undefined;
      }
      return true;
    });
    const h = await waitFor("cp-4 to follow the leader", 20_000, async () => {
      const x = await c.health("cp-4");
      return x?.role === "follower" && x.leader !== null ? x : undefined;
    });
    assert(h.applied_index > 40, `cp-4 applied ${h.applied_index}`);
    await waitFor("cp-4 to know the leader's API URL", 10_000, async () => {
      const ms = await _members(c, "cp-4");
      return ms.find((m) => m.node === h.leader)?.api ? true : undefined;
    });
    // Writes through the new member work and reach all four nodes.
    const via4 = await c.register("cp-4", "members", "via-cp-4");
    assertEquals(via4.status, 201, `via cp-4: ${JSON.stringify(via4.json)}`);
    await c.waitConverged(20_000, c.ids());
    const all = await waitSameInstances(c, "members", c.ids());
    assertEquals(all.size, 41);

    // `skein ctl members` shows the same configuration.
    const ctl = await runSkein([
      "ctl",
      "members",
      "--control",
      c.api(follower),
      "-o",
      "json",
      "--token",
      token,
    ]);
    assertEquals(ctl.code, 0, ctl.stderr);
    const listed = JSON.parse(ctl.stdout) as _Member[];
    assertEquals(listed.map((m) => m.node), ["cp-1", "cp-2", "cp-3", "cp-4"]);
    assert(listed.every((m) => m.voter));

    // Remove it again with the CLI, through cp-4 itself (forwarded to the leader).
    const rm = await runSkein([
      "ctl",
      "members",
      "remove",
      "cp-4",
      "--control",
      c.api(leader),
      "--token",
      token,
    ]);
    assertEquals(rm.code, 0, rm.stderr);
    await waitFor("cp-4 to leave every founder's configuration", 20_000, async () => {
      for (const id of ["cp-1", "cp-2", "cp-3"]) {
        const ms = await _members(c, id);
        if (ms.some((m) => m.node === "cp-4")) return undefined;
      }
      return true;
    });
    await c.kill("cp-4");
    // The three remaining nodes still have a quorum of their own.
    const founders = ["cp-1", "cp-2", "cp-3"];
    const l2 = await c.waitLeader(20_000, founders);
    assertEquals((await c.register(l2, "members", "after-remove")).status, 201);
    const missing = await request(
      `${c.api(l2)}/v1/members/cp-4`,
      "DELETE",
      undefined,
      undefined,
      token,
    );
    assertEquals(missing.status, 404, "removing a non-member is a 404");
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});
