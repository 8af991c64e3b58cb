import assert from "node:assert/strict";
import { type NodeId, nodeId } from "../../common/mod.ts";
import { FRAME_ANNOUNCE } from "./envelope.ts";
import { hostPort, Membership } from "./membership.ts";
import type { PeerAddr, PeerNet } from "./ports.ts";

/** A network that records what it is told. */
function recordingNet() {
  const sent: { to: string; frame: Uint8Array }[] = [];
  const peerSets: string[][] = [];
  const net: PeerNet = {
    send: (to, frame) => {
      sent.push({ to, frame });
      return true;
    },
    setPeers: (p: Map<NodeId, PeerAddr>) => peerSets.push([...p.keys()].sort()),
    connected: () => true,
    addr: { hostname: "x", port: 1 },
    close: () => Promise.resolve(),
  };
  return { net, sent, peerSets };
}

function table() {
  const m = new Membership({
    self: { node: "a", raft: "a:1", api: "https://a" },
    restored: [{ node: "b", raft: "b:1", api: null }],
    peers: [{ id: "a", hostname: "a", port: 1 }, { id: "c", hostname: "c", port: 1 }],
    ca: () => null,
  });
  const rec = recordingNet();
  m.attach(rec.net);
  return { m, ...rec };
}

Deno.test("hostPort() splits host:port and unwraps an IPv6 host", () => {
  assert.deepEqual(hostPort("n1:7000"), { hostname: "n1", port: 7000 });
  assert.deepEqual(hostPort("[::1]:7000"), { hostname: "::1", port: 7000 });
});

Deno.test("Membership links to every member but itself, from snapshot and config", () => {
  const { m } = table();
  assert.deepEqual([...m.peerMap().keys()].sort(), ["b", "c"]);
  assert.equal(m.has("a") && m.has("b") && m.has("c"), true);
  assert.deepEqual(m.forSnapshot().map((x) => x.node), ["a", "b", "c"]);
  assert.equal(m.forSnapshot()[0]!.api, null, "API URLs are learnt live, never stored");
});

Deno.test("Membership: a member entry adds a peer and tells it our API URL at once", () => {
  const { m, sent, peerSets } = table();
  m.onMemberEntry({ node: "d", raft: "d:1", api: null });
  assert.deepEqual(peerSets.at(-1), ["b", "c", "d"]);
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.to, "d");
  assert.equal(sent[0]!.frame[0], FRAME_ANNOUNCE);
});

Deno.test("Membership: only a removal drops a link; removing itself keeps its own entry", () => {
  const { m, peerSets } = table();
  m.onConfApplied({ op: "add_learner", node: nodeId("b") });
  assert.equal(peerSets.length, 0);
  m.onConfApplied({ op: "remove", node: nodeId("b") });
  assert.deepEqual(peerSets.at(-1), ["c"]);
  m.onConfApplied({ op: "remove", node: nodeId("a") });
  assert.equal(m.has("a"), true);
});

Deno.test("Membership: an announcement teaches a URL and a fresh one is answered", () => {
  const { m, sent } = table();
  const frame = (api: string) => {
    const body = new TextEncoder().encode(JSON.stringify({ api }));
    return new Uint8Array([FRAME_ANNOUNCE, ...body]);
  };
  m.onAnnounce(nodeId("b"), frame("https://b"));
  assert.equal(m.apiOf("b"), "https://b");
  assert.equal(sent.length, 1, "a peer with a new URL has just started and lacks ours");
  m.onAnnounce(nodeId("b"), frame("https://b"));
  assert.equal(sent.length, 1, "a known URL is not answered");
  m.onRestore([{ node: "b", raft: "b:2", api: null }]);
  assert.equal(m.apiOf("b"), "https://b", "a snapshot keeps the URLs learnt live");
  assert.deepEqual(m.list({ voters: ["b", "a"], learners: ["c"] }).map((x) => [x.node, x.voter]), [
    ["a", true],
    ["b", true],
    ["c", false],
  ]);
});
