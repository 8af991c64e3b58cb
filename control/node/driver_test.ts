import assert from "node:assert/strict";
import { type NodeId, nullLogger } from "../../common/mod.ts";
import { encodeCommand, validateCommand } from "../registry/mod.ts";
import { BackendError } from "../api/backend.ts";
import { MemFs } from "../../tests/sim/mem_fs.ts";
import { World } from "../../tests/sim/world.ts";
import { FOREVER } from "../../tests/sim/world.ts";
import { DurableLog } from "./durable_log.ts";
import { foundCluster } from "./bootstrap.ts";
import { type DriverHooks, NodeDriver } from "./driver.ts";
import type { PeerNet } from "./ports.ts";

const net: PeerNet = {
  send: () => true,
  setPeers: () => {},
  connected: () => undefined,
  addr: { hostname: "n1", port: 1 },
  close: () => Promise.resolve(),
};

/** One lone driver on `fs`, ticked by hand in a world whose clock it uses. */
async function lone(world: World, fs: MemFs) {
  const opened = await DurableLog.open("/data", nullLogger, fs);
  const storage = opened.fresh
    ? await foundCluster(
      { node: "n1", raftAdvertise: "n1:1", peers: [] },
      opened.durable,
      nullLogger,
    )
    : opened.storage;
  const driver = new NodeDriver(
    {
      node: "n1",
      electionTicks: 10,
      snapshotEvery: 1000,
      random: () => 0.5,
      log: nullLogger,
      clock: world.clock(FOREVER),
    },
    storage,
    opened.durable,
  );
  const seen = { roles: [] as string[], fatal: [] as Error[], applied: 0 };
  const hooks: DriverHooks = {
    onRoleChange: (role) => void seen.roles.push(role),
    onMemberEntry: () => {},
    onConfApplied: () => {},
    onRestore: () => {},
    onApplied: () => void seen.applied++,
    snapshotMembers: () => [],
    onFrame: (_from: NodeId) => {},
    onFatal: (e) => {
      seen.fatal.push(e);
      return Promise.resolve();
    },
  };
  driver.attach(hooks, net);
  for (let i = 0; i < 100 && driver.role !== "leader"; i++) {
    driver.tick();
    await world.settle();
  }
  assert.equal(driver.role, "leader");
  return { driver, seen };
}

const token = (id: string, hash: string) =>
  validateCommand({
    type: "put_operator_token",
    record: { id, name: id, role: "read", hash, createdAt: 1, expiresAt: null },
  });

Deno.test("NodeDriver acknowledges a write that a crash right after does not lose", async () => {
  const world = new World();
  const random = () => 0.5;
  const fs = new MemFs({ random });
  const { driver, seen } = await lone(world, fs);
  assert.deepEqual(seen.roles.at(-1), "leader");
  const cmd = token("t1", "1".repeat(64));
  const r = await driver.proposeChecked(encodeCommand(cmd), cmd, new AbortController().signal);
  assert.equal(r.ok, true);
  assert.ok(seen.applied > 0);
  // The process dies now; only what was fsynced (and part of the rest) is on disk.
  const after = await lone(world, fs.crashImage({ random }));
  assert.equal(after.driver.state.operatorTokenStatus("1".repeat(64)), "active");
});

Deno.test("NodeDriver stops on a failed fsync: the waiting write gets 503 storage_failure", async () => {
  const world = new World();
  let failSync = false;
  const fs = new MemFs({
    random: () => 0.5,
    plan: (op) => (failSync && op === "sync" ? "eio" : "ok"),
  });
  const { driver, seen } = await lone(world, fs);
  failSync = true;
  const cmd = token("t2", "2".repeat(64));
  const write = driver.proposeChecked(encodeCommand(cmd), cmd, new AbortController().signal);
  await assert.rejects(write, (e) => e instanceof BackendError && e.code === "storage_failure");
  const err = await driver.failed;
  assert.match(err.message, /EIO/);
  assert.equal(seen.fatal.length, 1);
  assert.throws(() => driver.checkUsable(), /EIO/);
});
