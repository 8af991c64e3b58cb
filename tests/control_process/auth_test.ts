/**
 * Operator authentication on a real 3-node cluster: each node has its own bootstrap token file,
 * every one of them works cluster-wide, roles are enforced through forwarding, and a revoked
 * bootstrap token stays revoked when its node restarts.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { ProcessCluster, request, sleep, waitFor } from "./cluster.ts";

const POLICY = { kind: "Policy", service: "ledger", timeout: "2s" };

Deno.test("operator tokens: 401 without, 403 for read, bootstrap tokens of every node work", async () => {
  const c = await ProcessCluster.create({ separateTokenFiles: true });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const follower = c.ids().find((id) => id !== leader)!;
    const leaderToken = await c.waitAdminToken(leader, leader);
    const put = (via: string, token?: string) =>
      request(`${c.api(via)}/v1/resources`, "PUT", POLICY, undefined, token);

    // Through a follower: it checks locally, then forwards to the leader.
    const none = await put(follower);
    assertEquals(none.status, 401, JSON.stringify(none.json));
    const read = await request(
      `${c.api(leader)}/v1/operator-tokens`,
      "POST",
      { role: "read", name: "viewer" },
      undefined,
      leaderToken,
    );
    assertEquals(read.status, 201, JSON.stringify(read.json));
    const readToken = read.json!.token as string;
    // The follower needs the replicated record before it accepts the new token.
    await waitFor("the read token on the follower", 10_000, async () => {
      const r = await request(`${c.api(follower)}/v1/members`, "GET", undefined, 1000, readToken);
      return r.status === 200 ? true : undefined;
    });
    const weak = await put(follower, readToken);
    assertEquals(weak.status, 403, JSON.stringify(weak.json));
    const ok = await put(follower, leaderToken);
    assertEquals(ok.status, 200, JSON.stringify(ok.json));

    // A node that is not the leader registered its own file's token too.
    const followerToken = await c.waitAdminToken(follower, leader);
    assert(followerToken !== leaderToken, "each node has its own bootstrap file");
    const viaOther = await put(leader, followerToken);
    assertEquals(viaOther.status, 200, JSON.stringify(viaOther.json));

    // Revoked: refused, and not brought back by its node's registration after a restart.
    const list = await request(
      `${c.api(leader)}/v1/operator-tokens`,
      "GET",
      undefined,
      undefined,
      leaderToken,
    );
    const boot = (list.json!.tokens as { id: string; name: string }[])
      .find((t) => t.name === `bootstrap ${follower}`);
    assert(boot, JSON.stringify(list.json));
    const rev = await request(
      `${c.api(leader)}/v1/operator-tokens/${boot.id}`,
      "DELETE",
      undefined,
      undefined,
      leaderToken,
    );
    assertEquals(rev.status, 200, JSON.stringify(rev.json));
    await c.signal(follower, "SIGTERM");
    await c.start(follower);
    await c.waitConverged();
    // Longer than the node's registration retry interval.
    await sleep(1500);
    assertEquals((await put(leader, followerToken)).status, 401);

    // Secrets never reach a log.
    for (const id of c.ids()) {
      const log = c.node(id).stderr;
      for (const t of [leaderToken, followerToken, readToken]) {
        assert(!log.includes(t), `${id} logged a token`);
      }
    }
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
  }
});
