/**
 * The Raft transport over mutual TLS: control nodes exchange frames; a certificate cannot speak
 * for another node; outside clients (openssl s_client, curl, plaintext, TLS 1.2) with anything
 * but a valid, unrevoked control certificate of the mesh CA get no frame through; and a
 * ControlNode trio on loopback elects a leader, adopts the CA seed and commits over mTLS.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { type NodeId, nodeId } from "../../common/ids.ts";
import { type Logger, memoryLogger, nullLogger } from "../../common/log.ts";
import {
  type CaState,
  finishRotation,
  revokeIdentity,
  rotateCa,
  trustBundlePem,
} from "../../control/ca/mod.ts";
import {
  allowAnyPeer,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  encodeHello,
  type PeerAddress,
  spiffeControlAuthorizer,
  tlsDialer,
  tlsListenerFactory,
  type TlsStreamListener,
  Transport,
  type TransportTlsSource,
} from "../../control/transport/mod.ts";
import { ControlIdentity } from "../../control/tls/mod.ts";
import { ControlNode } from "../../control/node/mod.ts";
import { validateCommand, type ValidatedCommand } from "../../control/registry/mod.ts";
import { controlLeaf, leaf, run, staticTlsSource, testCa, writePair } from "./_pki.ts";
import { freePort } from "../control_process/cluster.ts";

const TD = "skein.local";
const LOOPBACK = "127.0.0.1";
const HOUR = 3_600_000;
/** Liveness cap on waiting for something that must happen; not a timing assertion. */
const WAIT_LIMIT_MS = 20_000;
/** Bound on one outside client run, so a hung client fails the test instead of hanging it. */
const CLIENT_TIMEOUT_S = "15";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface TlsNode {
  id: NodeId;
  t: Transport;
  got: { from: NodeId; text: string }[];
  log: Logger & { lines: string[] };
  listener: () => TlsStreamListener;
}

/** A transport over mTLS; `honest: false` skips the outbound identity check (a liar). */
async function startTlsNode(
  self: string,
  source: TransportTlsSource,
  peers: ReadonlyMap<NodeId, PeerAddress> = new Map(),
  honest = true,
): Promise<TlsNode> {
  const got: { from: NodeId; text: string }[] = [];
  const log = memoryLogger();
  const factory = tlsListenerFactory({ source, logger: log });
  let listener: TlsStreamListener | null = null;
  const t = await Transport.start({
    self: nodeId(self),
    clusterId: TD,
    listen: { hostname: LOOPBACK, port: 0 },
    peers,
    maxQueuedFrames: 1024,
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    logger: log,
    reconnect: { baseMs: 10, maxMs: 200 },
    // Frames queued before a slow connect are kept: the 2 s default would drop them on a
    // stalled machine, and the test would wait for them in vain.
    maxQueueAgeMs: 60_000,
    dialer: tlsDialer({ source, logger: log }),
    listener: {
      async listen(a) {
        listener = await factory.listen(a) as TlsStreamListener;
        return listener;
      },
    },
    authorizePeer: honest ? spiffeControlAuthorizer(TD) : allowAnyPeer,
  }, (from, frame) => got.push({ from, text: dec.decode(frame) }));
  return { id: nodeId(self), t, got, log, listener: () => listener! };
}

function mesh(nodes: TlsNode[]): void {
  const peers = new Map<NodeId, PeerAddress>();
  for (const n of nodes) peers.set(n.id, n.t.addr);
  for (const n of nodes) n.t.setPeers(peers);
}

Deno.test("raft transport: three control nodes exchange frames over mutual TLS", async () => {
  const ca = await testCa(TD);
  const nodes: TlsNode[] = [];
  try {
    for (const n of ["cp-1", "cp-2", "cp-3"]) {
      nodes.push(await startTlsNode(n, staticTlsSource(ca, await controlLeaf(ca, n))));
    }
    mesh(nodes);
    for (const a of nodes) {
      for (const b of nodes) {
        if (a !== b) await waitUntil(() => a.t.send(b.id, enc.encode(`${a.id}->${b.id}`)), "send");
      }
    }
    for (const b of nodes) {
      await waitUntil(() => b.got.length >= 2, `${b.id} receives from both peers`);
      const want = nodes.filter((a) => a !== b).map((a) => `${a.id}:${a.id}->${b.id}`).sort();
      assertEquals(b.got.map((g) => `${g.from}:${g.text}`).sort(), want);
      assertEquals(b.listener().stats.accepted, 2);
    }
  } finally {
    await Promise.all(nodes.map((n) => n.t.close()));
  }
});

Deno.test("raft transport: a certificate for control/cp-2 cannot say hello as cp-3, nor serve as cp-3", async () => {
  const ca = await testCa(TD);
  const cp1 = await startTlsNode("cp-1", staticTlsSource(ca, await controlLeaf(ca, "cp-1")));
  const cp2Cert = await controlLeaf(ca, "cp-2");
  // The liar holds cp-2's certificate and claims to be cp-3.
  const liar = await startTlsNode("cp-3", staticTlsSource(ca, cp2Cert), new Map(), false);
  const cp2 = await startTlsNode("cp-2", staticTlsSource(ca, cp2Cert));
  try {
    cp1.t.setPeers(new Map([[nodeId("cp-2"), cp2.t.addr], [nodeId("cp-3"), liar.t.addr]]));
    liar.t.setPeers(new Map([[nodeId("cp-1"), cp1.t.addr]]));
    cp2.t.setPeers(new Map([[nodeId("cp-1"), cp1.t.addr]]));
    await waitUntil(() => {
      liar.t.send(nodeId("cp-1"), enc.encode("forged"));
      return cp1.log.lines.some((l) => l.includes("hello_identity_rejected"));
    }, "cp-1 refuses the forged hello");
    // cp-1 dialling "cp-3" reaches a server whose certificate says cp-2: refused.
    cp1.t.send(nodeId("cp-3"), enc.encode("for cp-3"));
    await waitUntil(
      () => cp1.log.lines.some((l) => l.includes("expected spiffe://skein.local/control/cp-3")),
      "cp-1 refuses a cp-3 server with a cp-2 certificate",
    );
    // The honest holder of the same certificate gets through: the refusal above was the hello.
    await waitUntil(() => cp2.t.send(nodeId("cp-1"), enc.encode("honest")), "send");
    await waitUntil(() => cp1.got.length > 0, "cp-1 receives cp-2's frame");
    assertEquals(cp1.got, [{ from: nodeId("cp-2"), text: "honest" }]);
    assertEquals(liar.got, []);
    assertEquals(cp1.t.stats().get(nodeId("cp-3"))!.connected, false);
  } finally {
    await Promise.all([cp1.t.close(), liar.t.close(), cp2.t.close()]);
  }
});

Deno.test("raft port refuses outside clients without a valid control certificate (openssl, curl, plaintext, TLS 1.2)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_raft_mtls_" });
  const ca = await testCa(TD);
  const other = await testCa(TD);
  const revokedId = `spiffe://${TD}/control/cp-3`;
  const server = await controlLeaf(ca, "cp-1", { extraSans: { ip: [LOOPBACK] } });
  const cp1 = await startTlsNode(
    "cp-1",
    staticTlsSource(revokeIdentity(ca, revokedId, { now: Date.now() }), server, [revokedId]),
    // Peers the clients below claim to be; nothing listens at these addresses.
    new Map([
      [nodeId("cp-2"), { hostname: LOOPBACK, port: freePort() }],
      [nodeId("cp-3"), { hostname: LOOPBACK, port: freePort() }],
    ]),
  );
  const port = cp1.t.addr.port;
  const caFile = `${dir}/ca.pem`;
  await Deno.writeTextFile(caFile, trustBundlePem(ca));
  const good = await writePair(dir, "good", await controlLeaf(ca, "cp-2"));
  const cases: [string, { cert: string; key: string } | undefined][] = [
    ["no certificate", undefined],
    ["another CA", await writePair(dir, "foreign", await controlLeaf(other, "cp-2"))],
    [
      "expired",
      await writePair(
        dir,
        "expired",
        await controlLeaf(ca, "cp-2", { now: Date.now() - 48 * HOUR }),
      ),
    ],
    ["revoked control identity", await writePair(dir, "revoked", await controlLeaf(ca, "cp-3"))],
    ["proxy identity", await writePair(dir, "proxy", await leaf(ca, "payments"))],
  ];
  // A valid hello for cp-2 and one frame: all ASCII, so it travels as a string on stdin.
  const hello = encodeFrame(encodeHello(nodeId("cp-2"), TD));
  const frame = encodeFrame(enc.encode("raft-bytes"));
  const input = dec.decode(hello) + dec.decode(frame);
  const sClient = (extra: string[]) =>
    run("timeout", [
      CLIENT_TIMEOUT_S,
      "openssl",
      "s_client",
      "-connect",
      `${LOOPBACK}:${port}`,
      "-CAfile",
      caFile,
      "-quiet",
      ...extra,
    ], input);
  const certArgs = (p?: { cert: string; key: string }) => p ? ["-cert", p.cert, "-key", p.key] : [];
  try {
    for (const [name, pair] of cases) {
      const r = await sClient(certArgs(pair));
      assert(r.code !== 124, `s_client (${name}) was not cut off: it hung`);
      const c = await run("curl", [
        "-sS",
        "--max-time",
        CLIENT_TIMEOUT_S,
        "--cacert",
        caFile,
        ...(pair ? ["--cert", pair.cert, "--key", pair.key] : []),
        `https://${LOOPBACK}:${port}/`,
      ]);
      assert(c.code !== 0, `curl (${name}) must fail, got ${c.code}: ${c.stdout}`);
    }
    // TLS 1.2 does not even finish the handshake, with a good certificate.
    const t12 = await sClient(["-tls1_2", ...certArgs(good)]);
    assert(t12.code !== 0, "TLS 1.2 handshake must fail");
    // Plaintext: the same bytes written raw get nothing back and no frame through.
    const conn = await Deno.connect({ hostname: LOOPBACK, port });
    await conn.write(new Uint8Array([...hello, ...frame]));
    const buf = new Uint8Array(4096);
    let answered = 0;
    try {
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) answered += n;
    } catch {
      // A reset is as good as a close here.
    }
    conn.close();
    assert(answered < 64, `plaintext got ${answered} bytes back, expected at most a TLS alert`);

    assertEquals(cp1.got, [], "no frame may reach the handler");
    const st = cp1.listener().stats;
    assertEquals(st.accepted, 0, JSON.stringify(st));
    assert(st.refused.revoked >= 2, JSON.stringify(st));
    assert(st.refused.peer_refused >= 2, JSON.stringify(st));
    assert(st.refused.handshake_failed >= 8, JSON.stringify(st));

    // The same client with a valid control certificate does deliver: the refusals were real.
    const ok = await run("timeout", [
      CLIENT_TIMEOUT_S,
      "openssl",
      "s_client",
      "-connect",
      `${LOOPBACK}:${port}`,
      "-CAfile",
      caFile,
      "-no_ign_eof",
      ...certArgs(good),
    ], input);
    await waitUntil(() => cp1.got.length > 0, `the valid client's frame arrives (${ok.stderr})`);
    assertEquals(cp1.got, [{ from: nodeId("cp-2"), text: "raft-bytes" }]);
    assertMatch(ok.stdout, /control\/cp-1|CONNECTED/);
  } finally {
    await cp1.t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("raft transport: a ControlIdentity's rotation applies to new connections without a restart", async () => {
  const ca1 = await testCa(TD);
  const clock = { now: () => Date.now(), setTimer: () => 0, clearTimer: () => {} };
  const identity = await ControlIdentity.create({
    node: "cp-1",
    trustDomain: TD,
    ca: ca1,
    sans: { ip: [LOOPBACK], dns: [] },
    clock,
  });
  const cp1 = await startTlsNode("cp-1", identity);
  const rotated: CaState = await rotateCa(ca1, { now: Date.now() });
  const onlyNew = finishRotation(rotated);
  // cp-2 trusts only the new root: it cannot reach cp-1 until cp-1 has a leaf from it.
  const cp2 = await startTlsNode(
    "cp-2",
    staticTlsSource(onlyNew, await controlLeaf(onlyNew, "cp-2")),
    new Map([[nodeId("cp-1"), cp1.t.addr]]),
  );
  try {
    cp1.t.setPeers(new Map([[nodeId("cp-2"), cp2.t.addr]]));
    await waitUntil(
      () => cp2.log.lines.some((l) => l.includes("dial failed")),
      "cp-2 fails to verify cp-1's old leaf",
    );
    assertEquals(cp1.got, []);
    await identity.updateCa(onlyNew);
    await waitUntil(() => {
      cp2.t.send(nodeId("cp-1"), enc.encode("after rotation"));
      return cp1.got.length > 0;
    }, "cp-2 reaches cp-1 once it has re-issued");
    assertEquals(cp1.got[0], { from: nodeId("cp-2"), text: "after rotation" });
  } finally {
    identity.close();
    await Promise.all([cp1.t.close(), cp2.t.close()]);
  }
});

interface Trio {
  seed: CaState;
  names: string[];
  dirs: string[];
  identities: ControlIdentity[];
  nodes: ControlNode[];
  /** (Re)starts node `i` with a fresh identity issued from the seed, as `skein control` does. */
  start(i: number): Promise<void>;
  close(): Promise<void>;
}

async function trio(): Promise<Trio> {
  const seed = await testCa(TD);
  const ports = [freePort(), freePort(), freePort()];
  const names = ["cp-1", "cp-2", "cp-3"];
  const peers = names.map((id, i) => ({ id, hostname: LOOPBACK, port: ports[i]! }));
  const t: Trio = {
    seed,
    names,
    dirs: [],
    identities: [],
    nodes: [],
    async start(i) {
      const node = names[i]!;
      t.dirs[i] ??= await Deno.makeTempDir({ prefix: `skein_raft_mtls_${node}_` });
      const identity = await ControlIdentity.create({
        node,
        trustDomain: TD,
        ca: seed,
        sans: { ip: [LOOPBACK], dns: ["localhost"] },
      });
      t.identities[i] = identity;
      t.nodes[i] = await ControlNode.start({
        node,
        dataDir: t.dirs[i]!,
        raftListen: { hostname: LOOPBACK, port: ports[i]! },
        raftAdvertise: `${LOOPBACK}:${ports[i]}`,
        apiUrl: `http://${LOOPBACK}:1`,
        peers,
        join: false,
        clusterId: TD,
        trustDomain: TD,
        tickMs: 50,
        electionTicks: 10,
        snapshotEvery: 10_000,
        log: nullLogger,
        tls: { identity, seedCa: seed },
      });
    },
    async close() {
      await Promise.all(t.nodes.map((n) => n.close()));
      for (const id of t.identities) id.close();
      for (const d of t.dirs) await Deno.remove(d, { recursive: true });
    },
  };
  for (let i = 0; i < names.length; i++) await t.start(i);
  return t;
}

/** The node of `among` (default: all) that leads, once one does. */
async function leaderOf(t: Trio, among: ControlNode[] = t.nodes): Promise<ControlNode> {
  await waitUntil(() => among.some((n) => n.isLeader()), "a leader is elected");
  return among.find((n) => n.isLeader())!;
}

/** Most attempts at one proposal: a leader change mid-proposal is retried on the new leader. */
const MAX_PROPOSE_ATTEMPTS = 4;

/**
 * Proposes `cmd` on the current leader, again on the next one when leadership changes under
 * it. A retried proposal may find its first attempt committed, so callers check the outcome
 * on the replicated state rather than on the result.
 */
async function propose(
  t: Trio,
  cmd: ValidatedCommand,
  among: ControlNode[] = t.nodes,
): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      await (await leaderOf(t, among)).propose(cmd, AbortSignal.timeout(WAIT_LIMIT_MS));
      return;
    } catch (e) {
      if (attempt >= MAX_PROPOSE_ATTEMPTS) throw e;
    }
  }
}

async function revokeAndSee(t: Trio, service: string): Promise<void> {
  const victim = `spiffe://${TD}/svc/${service}`;
  await propose(
    t,
    validateCommand({ type: "revoke_identity", spiffe_id: victim, now: Date.now() }),
  );
  await waitUntil(
    () => t.identities.every((id) => id.isRevoked(victim)),
    `the revocation of ${service} reaches every node's TLS identity`,
  );
}

Deno.test("ControlNode trio over mTLS elects a leader, adopts the CA seed and commits", async () => {
  const t = await trio();
  try {
    await leaderOf(t);
    await waitUntil(
      () => t.nodes.every((n) => n.state().ca()?.activeRootId === t.seed.activeRootId),
      "every node applies the seed as the cluster CA",
    );
    await revokeAndSee(t, "mallory");
    assertEquals(
      t.identities.map((id) => id.leaf().rootId),
      t.names.map(() => t.seed.activeRootId),
    );
  } finally {
    await t.close();
  }
});

Deno.test("ControlNode over mTLS: after a CA rotation, every node re-issues and a restarted node rejoins", async () => {
  const t = await trio();
  try {
    await leaderOf(t);
    await waitUntil(
      () => t.nodes.every((n) => n.state().ca()?.activeRootId === t.seed.activeRootId),
      "the seed is the cluster CA",
    );
    const rotated = await rotateCa(t.seed, { now: Date.now() });
    const finished = finishRotation(rotated);
    for (const [ca, expect] of [[rotated, t.seed], [finished, rotated]] as const) {
      await propose(
        t,
        validateCommand({ type: "put_ca", ca, expect_root_id: expect.activeRootId }),
      );
    }
    await waitUntil(
      () =>
        t.nodes.every((n) =>
          n.state().ca()?.roots.map((r) => r.id).join() === finished.activeRootId
        ),
      "every node applies the finished rotation",
    );
    await waitUntil(
      () => t.identities.every((id) => id.leaf().rootId === finished.activeRootId),
      "every node re-issues its leaf from the new root",
    );
    // Peers now trust only the new root. A restarted node starts from the seed (old root) and
    // must take the CA from its own replicated state to be let back in.
    await t.nodes[2]!.close();
    t.identities[2]!.close();
    await t.start(2);
    await waitUntil(
      () => t.identities[2]!.leaf().rootId === finished.activeRootId,
      "the restarted node re-issues from the replicated CA",
    );
    await revokeAndSee(t, "after-restart");
  } finally {
    await t.close();
  }
});

Deno.test("ControlNode over mTLS: revoking a control node cuts its open links at once", async () => {
  const t = await trio();
  try {
    await leaderOf(t);
    await waitUntil(() => t.nodes.every((n) => n.state().ca() !== null), "the CA on every node");
    const victim = `spiffe://${TD}/control/cp-3`;
    await propose(
      t,
      validateCommand({ type: "revoke_identity", spiffe_id: victim, now: Date.now() }),
    );
    await waitUntil(
      () => t.identities[0]!.isRevoked(victim) && t.identities[1]!.isRevoked(victim),
      "cp-1 and cp-2 apply the revocation of cp-3",
    );
    // cp-1 and cp-2 go on without it: a write commits on them and never reaches cp-3, although
    // its connections were open when it was revoked (a new handshake would be refused anyway).
    const marker = `spiffe://${TD}/svc/after-the-cut`;
    // Only through cp-1 or cp-2, retried: a stall past the election timeout can move the
    // leadership between them and fail one attempt.
    await propose(
      t,
      validateCommand({ type: "revoke_identity", spiffe_id: marker, now: Date.now() }),
      [t.nodes[0]!, t.nodes[1]!],
    );
    await waitUntil(
      () => t.identities[0]!.isRevoked(marker) && t.identities[1]!.isRevoked(marker),
      "the write after the cut on cp-1 and cp-2",
    );
    await new Promise((r) => setTimeout(r, 1000));
    assertEquals(t.nodes[2]!.state().ca()?.revoked.some((r) => r.spiffeId === marker), false);
  } finally {
    await t.close();
  }
});
