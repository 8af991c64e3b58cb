import assert from "node:assert/strict";
import { type NodeId, nodeId } from "../../common/mod.ts";
import { FRAME_RAFT } from "../../control/node/envelope.ts";
import { FRAME_FORWARD } from "../../control/node/write_relay.ts";
import { seededRandom } from "../seeded_random.ts";
import { SimNet } from "./sim_net.ts";
import { Incarnation, World } from "./world.ts";

/** Two nodes, a and b, on a network with the given fault rates; b records what arrives. */
async function pair(dropChance: number, dupChance: number) {
  const world = new World();
  const net = new SimNet(world, {
    random: seededRandom(3),
    dropChance,
    dupChance,
    delayMinMs: 1,
    delayMaxMs: 20,
  });
  const got: number[] = [];
  const peers = (id: string) => new Map([[nodeId(id), { hostname: id, port: 1 }]]);
  const aLife = new Incarnation(1);
  const bLife = new Incarnation(1);
  const a = await net.endpoint(nodeId("a"), aLife)(peers("b"), () => {});
  await net.endpoint(nodeId("b"), bLife)(peers("a"), (_f: NodeId, fr) => void got.push(fr[1]!));
  return { world, net, a, got, aLife, bLife };
}

Deno.test("SimNet reorders and duplicates Raft frames but keeps other frames in order, once", async () => {
  const { world, a, got } = await pair(0, 0.3);
  for (let i = 0; i < 50; i++) a.send(nodeId("b"), new Uint8Array([FRAME_RAFT, i]));
  await world.run(world.now + 100);
  assert.ok(got.length > 50, "some Raft frames arrived twice");
  assert.notDeepEqual(got, [...got].sort((x, y) => x - y), "Raft frames overtook each other");
  got.length = 0;
  for (let i = 0; i < 50; i++) a.send(nodeId("b"), new Uint8Array([FRAME_FORWARD, i]));
  await world.run(world.now + 100);
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
});

Deno.test("SimNet loses frames across a partition and to a process that died", async () => {
  const { world, net, a, got, bLife } = await pair(0, 0);
  net.partition(["a"], ["a", "b"]);
  a.send(nodeId("b"), new Uint8Array([FRAME_RAFT, 1]));
  assert.equal(a.connected(nodeId("b")), false);
  await world.run(world.now + 50);
  net.heal();
  a.send(nodeId("b"), new Uint8Array([FRAME_RAFT, 2]));
  bLife.alive = false;
  await world.run(world.now + 50);
  assert.deepEqual(got, []);
  assert.equal(a.connected(nodeId("b")), false);
});
