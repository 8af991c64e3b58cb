import assert from "node:assert/strict";
import { type NodeId, nodeId } from "../../common/ids.ts";
import { memoryLogger } from "../../common/log.ts";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame } from "./frame.ts";
import { encodeHello } from "./hello.ts";
import type { PeerAddress } from "./stream.ts";
import { Transport, type TransportOptions } from "./transport.ts";

const CLUSTER = "test-cluster";
const LOOPBACK = "127.0.0.1";
/** Upper bound on waiting for something that should happen; a liveness cap, not a timing assertion. */
const WAIT_LIMIT_MS = 15_000;

interface Received {
  from: NodeId;
  frame: Uint8Array;
}

interface TestNode {
  id: NodeId;
  t: Transport;
  got: Received[];
  log: ReturnType<typeof memoryLogger>;
}

async function startNode(
  id: string,
  extra: Partial<TransportOptions> = {},
  onFrame?: (from: NodeId, frame: Uint8Array) => void,
): Promise<TestNode> {
  const got: Received[] = [];
  const log = memoryLogger();
  const t = await Transport.start(
    {
      self: nodeId(id),
      clusterId: CLUSTER,
      listen: { hostname: LOOPBACK, port: 0 },
      peers: new Map(),
      maxQueuedFrames: 1024,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      logger: log,
      reconnect: { baseMs: 10, maxMs: 100 },
      // Frames queued before a slow connect are kept: the 2 s default would drop them on a
      // stalled machine, and the test would wait for them in vain.
      maxQueueAgeMs: 60_000,
      ...extra,
    },
    onFrame ?? ((from, frame) => got.push({ from, frame })),
  );
  return { id: nodeId(id), t, got, log };
}

/** Tells every node about every other node. */
function mesh(nodes: TestNode[], extraPeers: [NodeId, PeerAddress][] = []): void {
  const peers = new Map<NodeId, PeerAddress>(extraPeers);
  for (const n of nodes) peers.set(n.id, n.t.addr);
  for (const n of nodes) n.t.setPeers(peers);
}

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function untext(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** A port nothing listens on (bound then released). */
function freePort(): number {
  const l = Deno.listen({ hostname: LOOPBACK, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Resolves when the server side closes `conn` (EOF or reset); rejects on unexpected data. */
async function waitClosed(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16);
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (Date.now() < deadline) {
    try {
      const n = await conn.read(buf);
      if (n === null) return;
      throw new Error(`server sent ${n} unexpected bytes`);
    } catch (e) {
      if (e instanceof Deno.errors.ConnectionReset) return;
      throw e;
    }
  }
}

async function closeAll(nodes: TestNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.t.close()));
}

Deno.test("Transport delivers frames in both directions among 3 nodes", async () => {
  const nodes = await Promise.all(["a", "b", "c"].map((id) => startNode(id)));
  try {
    mesh(nodes);
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        assert.equal(from.t.send(to.id, text(`${from.id}->${to.id}`)), true);
      }
    }
    await waitUntil(() => nodes.every((n) => n.got.length === 2), "every node gets 2 frames");
    for (const n of nodes) {
      const seen = n.got.map((g) => `${g.from}:${untext(g.frame)}`).sort();
      const want = nodes.filter((o) => o !== n).map((o) => `${o.id}:${o.id}->${n.id}`).sort();
      assert.deepStrictEqual(seen, want);
    }
    const stats = nodes[0]!.t.stats();
    assert.deepStrictEqual([...stats.keys()].sort(), ["b", "c"]);
    assert.equal(stats.get(nodeId("b"))!.sentFrames, 1);
    assert.equal(stats.get(nodeId("b"))!.receivedFrames, 1);
  } finally {
    await closeAll(nodes);
  }
});

Deno.test("Transport delivers 10k small frames in order", async () => {
  const count = 10_000;
  const a = await startNode("a", { maxQueuedFrames: count });
  const b = await startNode("b");
  try {
    mesh([a, b]);
    for (let i = 0; i < count; i++) {
      const f = new Uint8Array(8);
      new DataView(f.buffer).setUint32(0, i);
      assert.equal(a.t.send(b.id, f), true, `send ${i}`);
    }
    await waitUntil(() => b.got.length === count, "10k frames at b");
    for (let i = 0; i < count; i++) {
      const g = b.got[i]!;
      assert.equal(g.from, a.id);
      assert.equal(new DataView(g.frame.buffer, g.frame.byteOffset).getUint32(0), i);
    }
    const s = a.t.stats().get(b.id)!;
    assert.equal(s.sentFrames, count);
    assert.equal(s.dropped, 0);
    assert.equal(s.queued, 0);
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("Transport carries large frames next to small ones", async () => {
  const a = await startNode("a");
  const b = await startNode("b");
  try {
    mesh([a, b]);
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    const frames = [text("x"), big, text("y"), big.subarray(0, 70_000), text("z")];
    for (const f of frames) assert.equal(a.t.send(b.id, f), true);
    await waitUntil(() => b.got.length === frames.length, "5 frames at b");
    // Compared byte-wise with a short message: a failing deepStrictEqual on 3 MiB is unreadable.
    b.got.forEach((g, i) => {
      const want = frames[i]!;
      assert.equal(g.frame.length, want.length, `frame ${i} length`);
      assert.equal(g.frame.findIndex((x, j) => x !== want[j]), -1, `frame ${i} content`);
    });
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("Transport reassembles a hello and a frame sent byte by byte", async () => {
  const b = await startNode("b");
  const conn = await Deno.connect({ hostname: LOOPBACK, port: b.t.addr.port });
  conn.setNoDelay(true);
  try {
    b.t.setPeers(new Map([[nodeId("raw"), { hostname: LOOPBACK, port: freePort() }]]));
    const bytes = new Uint8Array([
      ...encodeFrame(encodeHello(nodeId("raw"), CLUSTER)),
      ...encodeFrame(text("split into single bytes")),
    ]);
    for (const byte of bytes) {
      await conn.write(new Uint8Array([byte]));
      // Give the receiver a chance to read each byte on its own.
      await new Promise((r) => setTimeout(r, 0));
    }
    await waitUntil(() => b.got.length === 1, "the split frame at b");
    assert.equal(b.got[0]!.from, "raw");
    assert.equal(untext(b.got[0]!.frame), "split into single bytes");
  } finally {
    conn.close();
    await b.t.close();
  }
});

Deno.test("Transport closes connections with a bad hello and keeps serving good peers", async () => {
  const a = await startNode("a");
  const b = await startNode("b");
  try {
    mesh([a, b]);
    const cases: [string, Uint8Array, string][] = [
      ["http request", text("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "frame_too_large"],
      ["bad magic", encodeFrame(text("HELLO there")), "hello_bad_magic"],
      ["wrong cluster", encodeFrame(encodeHello(nodeId("a"), "other")), "hello_cluster_mismatch"],
      ["unknown node", encodeFrame(encodeHello(nodeId("zed"), CLUSTER)), "hello_unknown_peer"],
      ["self", encodeFrame(encodeHello(nodeId("b"), CLUSTER)), "hello_from_self"],
      ["empty frame", new Uint8Array(4), "zero_length_frame"],
    ];
    for (const [name, bytes, reason] of cases) {
      const conn = await Deno.connect({ hostname: LOOPBACK, port: b.t.addr.port });
      try {
        await conn.write(bytes);
        await waitClosed(conn);
      } finally {
        conn.close();
      }
      await waitUntil(
        () => b.log.lines.some((l) => l.includes(`reason=${reason}`)),
        `log line for ${name} with reason=${reason}`,
      );
    }
    assert.equal(a.t.send(b.id, text("still works")), true);
    assert.equal(b.t.send(a.id, text("both ways")), true);
    await waitUntil(() => a.got.length === 1 && b.got.length === 1, "frames after garbage");
    assert.equal(untext(b.got[0]!.frame), "still works");
    assert.equal(untext(a.got[0]!.frame), "both ways");
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("Transport rejects an oversize length prefix without waiting for the body", async () => {
  const b = await startNode("b", { maxFrameBytes: 1024 });
  const conn = await Deno.connect({ hostname: LOOPBACK, port: b.t.addr.port });
  try {
    b.t.setPeers(new Map([[nodeId("raw"), { hostname: LOOPBACK, port: freePort() }]]));
    // A valid hello, then a header claiming ~4 GiB and no body: the connection must be closed
    // on the header alone, which it could not be if the transport waited for (or allocated)
    // the claimed bytes.
    await conn.write(encodeFrame(encodeHello(nodeId("raw"), CLUSTER)));
    await waitUntil(() => b.t.stats().get(nodeId("raw"))?.inboundConnected === true, "hello ok");
    await conn.write(new Uint8Array([0xff, 0xff, 0xff, 0xf0]));
    await waitClosed(conn);
    await waitUntil(
      () => b.log.lines.some((l) => l.includes("reason=frame_too_large")),
      "frame_too_large logged",
    );
    assert.ok(b.log.lines.some((l) => l.includes("length prefix 4294967280, limit 1024")));
    assert.equal(b.got.length, 0);
  } finally {
    conn.close();
    await b.t.close();
  }
});

Deno.test("Transport closes an inbound connection that sends no hello in time", async () => {
  const b = await startNode("b", { helloTimeoutMs: 50 });
  const conn = await Deno.connect({ hostname: LOOPBACK, port: b.t.addr.port });
  try {
    await waitClosed(conn);
    await waitUntil(
      () => b.log.lines.some((l) => l.includes("reason=hello_timeout")),
      "hello_timeout logged",
    );
  } finally {
    conn.close();
    await b.t.close();
  }
});

Deno.test("Transport drops frames that waited longer than maxQueueAgeMs for a down peer", async () => {
  const port = freePort();
  // Near the real clock: the hello carries it, and b refuses a clock far from its own.
  let clock = Date.now();
  const a = await startNode("a", { now: () => clock, maxQueueAgeMs: 500 });
  let b: TestNode | null = null;
  try {
    a.t.setPeers(new Map([[nodeId("b"), { hostname: LOOPBACK, port }]]));
    assert.equal(a.t.send(nodeId("b"), text("stale")), true);
    await waitUntil(() => a.log.lines.some((l) => l.includes("dial failed")), "a dial failure");
    clock += 501; // the queued frame is now older than the bound
    b = await startNode("b", {
      listen: { hostname: LOOPBACK, port },
      peers: new Map([[a.id, a.t.addr]]),
    });
    assert.equal(a.t.send(nodeId("b"), text("fresh")), true);
    await waitUntil(() => b!.got.length >= 1, "the fresh frame at b");
    assert.deepStrictEqual(b.got.map((g) => untext(g.frame)), ["fresh"]);
    assert.equal(a.t.stats().get(nodeId("b"))!.dropped, 1);
  } finally {
    await a.t.close();
    await b?.t.close();
  }
});

Deno.test("Transport delivers queued frames once a down peer comes up", async () => {
  const port = freePort();
  const a = await startNode("a");
  let b: TestNode | null = null;
  try {
    a.t.setPeers(new Map([[nodeId("b"), { hostname: LOOPBACK, port }]]));
    assert.equal(a.t.send(nodeId("b"), text("queued while down")), true);
    await waitUntil(
      () => a.log.lines.some((l) => l.includes("dial failed")),
      "a dial failure",
    );
    assert.equal(a.t.stats().get(nodeId("b"))!.connected, false);
    // Peers given at start, so no redial from a can arrive before b knows a.
    b = await startNode("b", {
      listen: { hostname: LOOPBACK, port },
      peers: new Map([[a.id, a.t.addr]]),
    });
    assert.equal(a.t.send(nodeId("b"), text("sent after up")), true);
    await waitUntil(() => b!.got.length === 2, "both frames at b");
    assert.deepStrictEqual(b.got.map((g) => untext(g.frame)), [
      "queued while down",
      "sent after up",
    ]);
    assert.equal(a.t.stats().get(nodeId("b"))!.connected, true);
  } finally {
    await a.t.close();
    await b?.t.close();
  }
});

Deno.test("Transport redials when a peer restarts", async () => {
  const a = await startNode("a");
  let b = await startNode("b");
  const port = b.t.addr.port;
  try {
    mesh([a, b]);
    assert.equal(a.t.send(b.id, text("one")), true);
    await waitUntil(() => b.got.length === 1, "first frame");
    await b.t.close();
    await waitUntil(() => !a.t.stats().get(b.id)!.connected, "a notices b is gone");
    b = await startNode("b", {
      listen: { hostname: LOOPBACK, port },
      peers: new Map([[a.id, a.t.addr]]),
    });
    await waitUntil(() => a.t.stats().get(b.id)!.connected, "a reconnects");
    assert.equal(a.t.send(b.id, text("two")), true);
    await waitUntil(() => b.got.length === 1, "frame after restart");
    assert.equal(untext(b.got[0]!.frame), "two");
    assert.equal(a.t.stats().get(b.id)!.connects, 2);
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("Transport send returns false once a stopped peer's queue is full", async () => {
  // A peer that accepts and reads the hello, then never reads again: the kernel buffers fill,
  // the writer blocks, and the bounded queue must take over.
  const listener = Deno.listen({ hostname: LOOPBACK, port: 0 });
  const accepted: Deno.Conn[] = [];
  const acceptLoop = (async () => {
    for await (const c of listener) accepted.push(c);
  })();
  const maxQueuedFrames = 32;
  const a = await startNode("a", { maxQueuedFrames });
  try {
    const stopped = nodeId("stopped");
    a.t.setPeers(new Map([[stopped, listener.addr as Deno.NetAddr]]));
    await waitUntil(() => a.t.stats().get(stopped)?.connected === true, "connected");
    const frame = new Uint8Array(16 * 1024);
    let accepted_ = 0;
    let refused = false;
    // At most ~1 GiB would be offered; a transport without backpressure fails this bound.
    for (let i = 0; i < 64 * 1024 && !refused; i++) {
      if (a.t.send(stopped, frame)) accepted_++;
      else refused = true;
      if (i % 16 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    assert.ok(refused, `send never returned false after ${accepted_} frames`);
    const s1 = a.t.stats().get(stopped)!;
    assert.equal(s1.queued, maxQueuedFrames);
    assert.ok(s1.queuedBytes <= maxQueuedFrames * frame.length);
    assert.equal(s1.dropped, 1);
    for (let i = 0; i < 100; i++) assert.equal(a.t.send(stopped, frame), false);
    const s2 = a.t.stats().get(stopped)!;
    assert.equal(s2.dropped, 101);
    assert.equal(s2.queued, maxQueuedFrames);
    assert.equal(s2.sentFrames + s2.queued, accepted_);
  } finally {
    await a.t.close();
    listener.close();
    await acceptLoop;
    for (const c of accepted) c.close();
  }
});

Deno.test("Transport.setPeers removal closes the connections to and from that peer", async () => {
  const a = await startNode("a");
  const b = await startNode("b");
  try {
    mesh([a, b]);
    await waitUntil(() => {
      const ab = a.t.stats().get(b.id);
      const ba = b.t.stats().get(a.id);
      return !!ab?.connected && !!ab.inboundConnected && !!ba?.connected && !!ba.inboundConnected;
    }, "a and b connected both ways");
    a.t.setPeers(new Map());
    assert.equal(a.t.stats().has(b.id), false);
    assert.equal(a.t.send(b.id, text("gone")), false);
    // b sees both connections end: a's outbound was closed, and b's redials are refused.
    await waitUntil(() => {
      const ba = b.t.stats().get(a.id)!;
      return !ba.inboundConnected && !ba.connected;
    }, "b sees a disconnect");
    await waitUntil(
      () => a.log.lines.some((l) => l.includes("reason=hello_unknown_peer")),
      "a refuses b's redial",
    );
    assert.equal(a.got.length, 0);
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("Transport.setPeers with a new address moves the connection", async () => {
  const a = await startNode("a");
  const b1 = await startNode("b");
  const b2 = await startNode("b");
  try {
    b1.t.setPeers(new Map([[a.id, a.t.addr]]));
    b2.t.setPeers(new Map([[a.id, a.t.addr]]));
    a.t.setPeers(new Map([[b1.id, b1.t.addr]]));
    assert.equal(a.t.send(b1.id, text("to first")), true);
    await waitUntil(() => b1.got.length === 1, "frame at first address");
    a.t.setPeers(new Map([[b1.id, b2.t.addr]]));
    await waitUntil(() => a.t.stats().get(b1.id)!.connects === 2, "redialled");
    assert.equal(a.t.send(b1.id, text("to second")), true);
    await waitUntil(() => b2.got.length === 1, "frame at second address");
    assert.equal(untext(b2.got[0]!.frame), "to second");
    assert.equal(b1.got.length, 1);
  } finally {
    await closeAll([a, b1, b2]);
  }
});

Deno.test("Transport.send rejects empty and oversize frames and ignores unknown peers", async () => {
  const a = await startNode("a", { maxFrameBytes: 100 });
  try {
    a.t.setPeers(new Map([[nodeId("b"), { hostname: LOOPBACK, port: freePort() }]]));
    assert.throws(() => a.t.send(nodeId("b"), new Uint8Array(0)), RangeError);
    assert.throws(() => a.t.send(nodeId("b"), new Uint8Array(101)), RangeError);
    assert.equal(a.t.send(nodeId("nobody"), new Uint8Array(1)), false);
    assert.equal(a.t.send(nodeId("b"), new Uint8Array(100)), true);
  } finally {
    await a.t.close();
  }
  assert.equal(a.t.send(nodeId("b"), new Uint8Array(1)), false);
});

Deno.test("Transport keeps reading after the frame handler throws", async () => {
  const a = await startNode("a");
  const seen: string[] = [];
  const b = await startNode("b", {}, (_from, frame) => {
    seen.push(untext(frame));
    if (seen.length === 1) throw new Error("handler bug");
  });
  try {
    mesh([a, b]);
    a.t.send(b.id, text("first"));
    a.t.send(b.id, text("second"));
    await waitUntil(() => seen.length === 2, "both frames handled");
    assert.deepStrictEqual(seen, ["first", "second"]);
    assert.ok(b.log.lines.some((l) => l.includes("frame handler threw")));
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("Transport asks authorizePeer about both directions and refuses on false", async () => {
  const calls: string[] = [];
  const a = await startNode("a");
  const b = await startNode("b", {
    authorizePeer: (node, identity, direction) => {
      calls.push(`${direction}:${node}:${identity === null ? "none" : "some"}`);
      return false;
    },
  });
  try {
    mesh([a, b]);
    await waitUntil(
      () => b.log.lines.some((l) => l.includes("reason=hello_identity_rejected")),
      "b refuses a's hello",
    );
    await waitUntil(
      () => b.log.lines.some((l) => l.includes("peer identity rejected")),
      "b refuses its own outbound channel to a",
    );
    assert.ok(calls.includes("inbound:a:none"));
    assert.ok(calls.includes("outbound:a:none"));
    assert.equal(b.t.stats().get(a.id)!.connects, 0);
    assert.equal(b.t.stats().get(a.id)!.inboundConnected, false);
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("Transport redials a peer that answers nothing while frames go to it (peerSilenceMs)", async () => {
  const a = await startNode("a", { peerSilenceMs: 100 });
  const b = await startNode("b");
  // B receives but never sends back, as a peer behind a half-dead connection looks.
  const keepSending = setInterval(() => a.t.send(b.id, text("ping")), 10);
  try {
    mesh([a, b]);
    await waitUntil(() => b.got.length > 0, "b to receive");
    await waitUntil(
      () => (a.t.stats().get(b.id)?.connects ?? 0) >= 2,
      "a to redial the silent peer",
    );
    assert.ok(a.log.lines.some((l) => l.includes("transport: reconnecting")));
  } finally {
    clearInterval(keepSending);
    await closeAll([a, b]);
  }
});

Deno.test("Transport keeps the connection to a peer that answers (peerSilenceMs)", async () => {
  const b = await startNode("b", {}, (from, frame) => {
    // Every frame is answered, as Raft answers a heartbeat.
    if (untext(frame) === "ping") b.t.send(from, text("pong"));
  });
  const a = await startNode("a", { peerSilenceMs: 100 });
  const keepSending = setInterval(() => a.t.send(b.id, text("ping")), 10);
  try {
    mesh([a, b]);
    // Far more frames than fit in several silence periods, each answered.
    await waitUntil(() => a.got.length >= 60, "60 answers");
    assert.equal(a.t.stats().get(b.id)?.connects, 1);
  } finally {
    clearInterval(keepSending);
    await closeAll([a, b]);
  }
});

Deno.test("Transport refuses a peer whose clock is beyond the bound, both ways, and takes one within it", async () => {
  const a = await startNode("a", { now: () => Date.now() + 45_000 });
  const b = await startNode("b");
  const c = await startNode("c", { now: () => Date.now() + 10_000 });
  try {
    mesh([a, b, c]);
    await waitUntil(
      () => b.log.lines.some((l) => l.includes("peer a's clock is") && l.includes("ahead of")),
      "b refuses a, whose clock is 45 s ahead",
    );
    await waitUntil(
      () => a.log.lines.some((l) => l.includes("peer b's clock is") && l.includes("behind")),
      "a refuses b, whose clock is 45 s behind a's",
    );
    // a redials (backoff up to 100 ms here): the error is said once, the repeats at debug.
    const skewLines = () => b.log.lines.filter((l) => l.includes("clocks too far apart"));
    await waitUntil(() => skewLines().length >= 3, "a's repeated hellos refused");
    assert.equal(skewLines().filter((l) => l.includes("level=error")).length, 1);
    assert.ok(
      skewLines().every((l) => l.includes("reason=hello_clock_skew") && l.includes("peer=a")),
    );
    // c is 10 s ahead of b: within the bound, so frames flow.
    assert.equal(c.t.send(b.id, text("c->b")), true);
    assert.equal(b.t.send(c.id, text("b->c")), true);
    await waitUntil(
      () => b.got.some((g) => g.from === c.id) && c.got.some((g) => g.from === b.id),
      "b and c exchange frames",
    );
    assert.equal(b.got.some((g) => g.from === a.id), false);
  } finally {
    await closeAll([a, b, c]);
  }
});
