import assert from "node:assert/strict";
import { type NodeId, nodeId, nullLogger } from "../../common/mod.ts";
import type { ControlNodeOptions } from "./options.ts";
import type { PeerAddr } from "./ports.ts";
import { transportNet } from "./transport_net.ts";

const opts = (node: string): ControlNodeOptions => ({
  node,
  dataDir: "/unused",
  raftListen: { hostname: "127.0.0.1", port: 0 },
  raftAdvertise: "127.0.0.1:0",
  apiUrl: `http://${node}`,
  peers: [],
  join: false,
  clusterId: "net.test",
  tickMs: 100,
  electionTicks: 10,
  snapshotEvery: 1000,
  log: nullLogger,
});

/** Polls `cond` every 20 ms for up to 10 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), what);
}

Deno.test("transportNet() carries frames between two nodes over the real transport", async () => {
  const got: { from: NodeId; frame: Uint8Array }[] = [];
  const a = await transportNet(opts("a"))(new Map(), (from, frame) => got.push({ from, frame }));
  const b = await transportNet(opts("b"))(
    new Map<NodeId, PeerAddr>([[nodeId("a"), a.addr]]),
    () => {},
  );
  try {
    a.setPeers(new Map([[nodeId("b"), b.addr]]));
    assert.notEqual(a.addr.port, 0, "the listener reports the port it took");
    assert.equal(b.connected(nodeId("nobody")), undefined);
    await until(() => b.connected(nodeId("a")) === true, "b connects to a");
    assert.equal(b.send(nodeId("a"), new Uint8Array([9, 1, 2])), true);
    await until(() => got.length > 0, "a receives b's frame");
    assert.equal(got[0]!.from, "b");
    assert.deepEqual([...got[0]!.frame], [9, 1, 2]);
  } finally {
    await a.close();
    await b.close();
  }
});
