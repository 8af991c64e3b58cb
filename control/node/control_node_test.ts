import assert from "node:assert/strict";
import { validateCommand } from "../registry/mod.ts";
import { NotLeaderError } from "../api/backend.ts";
import { MemFs } from "../../tests/sim/mem_fs.ts";
import { SimNet } from "../../tests/sim/sim_net.ts";
import { simNodeOptions, startSimNode } from "../../tests/sim/sim_node.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { FOREVER, Incarnation, World } from "../../tests/sim/world.ts";
import type { ControlNode } from "./control_node.ts";

const IDS = ["n1", "n2", "n3"];

/** Three nodes on a lossless simulated network. */
async function cluster() {
  const world = new World();
  const random = seededRandom(42);
  const net = new SimNet(world, {
    random,
    dropChance: 0,
    dupChance: 0,
    delayMinMs: 1,
    delayMaxMs: 3,
  });
  const nodes: ControlNode[] = [];
  for (const id of IDS) {
    const opts = simNodeOptions(id, IDS, { random: seededRandom(IDS.indexOf(id) + 7) });
    nodes.push(await startSimNode(world, net, new MemFs({ random }), new Incarnation(1), opts));
  }
  return { world, nodes };
}

const token = (id: string) =>
  validateCommand({
    type: "put_operator_token",
    record: { id, name: id, role: "read", hash: "c".repeat(64), createdAt: 1, expiresAt: null },
  });

Deno.test("ControlNode refuses a write with not_leader while it knows no leader", async () => {
  const { world, nodes } = await cluster();
  assert.equal(nodes[0]!.health().leader, null);
  await assert.rejects(
    nodes[0]!.propose(token("early"), world.clock(FOREVER).timeout(1000)),
    NotLeaderError,
  );
  world.close();
});

Deno.test("ControlNode relays a follower's write to the leader and every node applies it", async () => {
  const { world, nodes } = await cluster();
  const settled = () => {
    const l = nodes.find((n) => n.isLeader());
    return l !== undefined && nodes.every((n) => n.health().leader === l.id);
  };
  await world.run(world.now + 5_000, settled);
  const leader = nodes.find((n) => n.isLeader())!;
  const follower = nodes.find((n) => !n.isLeader())!;
  assert.equal(follower.health().leader, leader.id);
  let result: Awaited<ReturnType<ControlNode["propose"]>> | null = null;
  void follower.propose(token("relayed"), world.clock(FOREVER).timeout(2000)).then((r) =>
    result = r
  );
  await world.run(world.now + 2_000, () => result !== null);
  assert.equal(result!.ok, true);
  assert.equal(follower.writeForwardStats().sent, 1, "the write went over the peer link");
  assert.equal(leader.writeForwardStats().sent, 0);
  await world.run(
    world.now + 2_000,
    () => nodes.every((n) => n.state().operatorTokenStatus("c".repeat(64)) === "active"),
  );
  for (const n of nodes) assert.equal(n.state().operatorTokenStatus("c".repeat(64)), "active");
  assert.deepEqual(leader.members().map((m) => [m.node, m.address, m.voter]), [
    ["n1", "n1:1", true],
    ["n2", "n2:1", true],
    ["n3", "n3:1", true],
  ]);
  // Announcements taught every node the leader's API URL.
  await world.run(world.now + 1_500);
  assert.equal(follower.leaderApi(), `http://${leader.id}.sim`);
  world.close();
});
