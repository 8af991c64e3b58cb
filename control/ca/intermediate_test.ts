import { X509Certificate } from "node:crypto";
import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/assert.ts";
import { chainAnchor, createMtlsServer, mtlsConnect, splitPemCerts } from "../../common/tls/mod.ts";
import {
  activeSignerId,
  CaError,
  type CaState,
  createCa,
  createOfflineRootCa,
  installIntermediate,
  issueCertificate,
  parseCaState,
  publicCaView,
  rotateCa,
  signIntermediate,
} from "./mod.ts";

const NOW = Date.now();
const TD = "skein.local";
const DAY = 24 * 3_600_000;
const A = { kind: "service", service: "a" } as const;

function roots(ca: CaState): X509Certificate[] {
  return ca.roots.map((r) => new X509Certificate(r.certPem));
}

Deno.test("an offline-root CA keeps no root key and signs leaves that chain through its intermediate", async () => {
  const made = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const root = made.state.roots[0]!;
  assertEquals(root.keyPem, undefined);
  assert(!JSON.stringify(made.state).includes(made.root.keyPem.split("\n")[1]!));
  const leaf = await issueCertificate(made.state, { identity: A, now: NOW });
  const [leafPem, interPem, ...more] = splitPemCerts(leaf.certPem);
  assertEquals(more.length, 0);
  assertEquals(interPem, root.intermediate!.certPem);
  const l = new X509Certificate(leafPem!);
  const i = new X509Certificate(interPem!);
  const r = new X509Certificate(root.certPem);
  assert(l.verify(i.publicKey) && i.verify(r.publicKey) && !l.verify(r.publicKey));
  assert(i.ca && r.ca);
  // Leaf → intermediate → root, with the root as the only anchor.
  assertEquals(chainAnchor(leaf.certPem, [r])?.fingerprint256, r.fingerprint256);
  assertEquals(chainAnchor(leafPem!, [r]), null, "a leaf without its intermediate leads nowhere");
  assertEquals(leaf.caPem, root.certPem, "the bundle is the root alone");
  assert(leaf.notAfter <= root.intermediate!.notAfter);
});

Deno.test("an offline-root CA survives JSON, and its public view holds no private key", async () => {
  const made = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const back = parseCaState(JSON.parse(JSON.stringify(made.state)));
  assertEquals(back, made.state);
  const view = JSON.stringify(publicCaView(back));
  assert(!view.includes("PRIVATE KEY"));
  assert(view.includes(made.intermediate.certPem.split("\n")[1]!));
  const { intermediate: _i, ...bare } = made.state.roots[0]!;
  assertRejects(async () => await parseCaState({ ...made.state, roots: [bare] }), CaError);
});

Deno.test("installIntermediate() switches new leaves to the new intermediate; old leaves still reach the root", async () => {
  const made = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const before = await issueCertificate(made.state, { identity: A, now: NOW });
  const next = await signIntermediate({
    rootCertPem: made.root.certPem,
    rootKeyPem: made.root.keyPem,
    now: NOW,
  });
  const ca = await installIntermediate(made.state, { ...next, now: NOW });
  assert(activeSignerId(ca) !== activeSignerId(made.state));
  assertEquals(ca.activeRootId, made.state.activeRootId);
  assertEquals(ca.roots.length, 1);
  const after = await issueCertificate(ca, { identity: A, now: NOW });
  assertEquals(splitPemCerts(after.certPem)[1], next.certPem);
  for (const leaf of [before, after]) {
    assertEquals(
      chainAnchor(leaf.certPem, roots(ca))?.fingerprint256,
      roots(ca)[0]!.fingerprint256,
    );
  }
  assertEquals(await installIntermediate(ca, { ...next, now: NOW }), ca, "same one: no change");
});

Deno.test("checkIntermediate() refuses a foreign, expired, not-yet-valid or mismatched intermediate with one line each", async () => {
  const made = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const other = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const sign = (now: number, validityMs?: number) =>
    signIntermediate({
      rootCertPem: made.root.certPem,
      rootKeyPem: made.root.keyPem,
      now,
      ...(validityMs !== undefined ? { validityMs } : {}),
    });
  const good = await sign(NOW);
  const expired = await sign(NOW - 3 * DAY, DAY);
  const future = await sign(NOW + 2 * DAY);
  const cases: [string, { certPem: string; keyPem: string }, RegExp][] = [
    ["another root's", other.intermediate, /intermediate is not signed by the configured root/],
    ["expired", expired, /intermediate expired at/],
    ["not yet valid", future, /intermediate is not valid before/],
    [
      "mismatched key",
      { certPem: good.certPem, keyPem: other.intermediate.keyPem },
      /intermediate key does not match/,
    ],
    ["the root itself", made.root, /self-signed root, not an intermediate/],
    [
      "two certificates",
      { certPem: good.certPem + good.certPem, keyPem: good.keyPem },
      /holds 2 certificates/,
    ],
  ];
  for (const [name, pair, re] of cases) {
    const e = await assertRejects(
      () => installIntermediate(made.state, { ...pair, now: NOW }),
      CaError,
      name,
    );
    assertEquals(e.code, "invalid_intermediate", name);
    assertMatch(e.message, re, name);
    assert(!e.message.includes("\n"), `${name}: one line`);
  }
});

Deno.test("a single-root CA keeps working, and the two kinds refuse each other's operations", async () => {
  const legacy = await createCa({ trustDomain: TD, now: NOW });
  const leaf = await issueCertificate(legacy, { identity: A, now: NOW });
  assertEquals(splitPemCerts(leaf.certPem).length, 1, "no intermediate in a single-root chain");
  assertEquals(activeSignerId(legacy), legacy.activeRootId);
  // Its root has pathlen:0: it cannot certify an intermediate.
  const e = await assertRejects(
    () =>
      signIntermediate({
        rootCertPem: legacy.roots[0]!.certPem,
        rootKeyPem: legacy.roots[0]!.keyPem,
        now: NOW,
      }),
    CaError,
  );
  assertMatch(e.message, /pathlen:0/);
  const made = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const e2 = await assertRejects(
    () => installIntermediate(legacy, { ...made.intermediate, now: NOW }),
    CaError,
  );
  assertMatch(e2.message, /signs leaves itself/);
  // An offline root cannot be rotated from a control node.
  const e3 = await assertRejects(() => rotateCa(made.state, { now: NOW }), CaError);
  assertEquals(e3.code, "root_offline");
});

Deno.test("node:tls both ways: leaf + intermediate chains verify against the root alone; another root's do not", async () => {
  const made = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const other = await createOfflineRootCa({ trustDomain: TD, now: NOW });
  const server = await issueCertificate(made.state, {
    identity: { kind: "service", service: "b" },
    now: NOW,
  });
  const client = await issueCertificate(made.state, { identity: A, now: NOW });
  const stranger = await issueCertificate(other.state, { identity: A, now: NOW });
  const seen: string[] = [];
  const srv = createMtlsServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: made.root.certPem,
    trustDomain: TD,
    onConnection: (s, peer) => {
      seen.push(peer.spiffeId.uri);
      s.end("ok");
    },
  });
  const { port } = await srv.listen(0, "127.0.0.1");
  try {
    const s = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: client.certPem,
      key: client.keyPem,
      ca: made.root.certPem,
      expectSpiffe: "spiffe://skein.local/svc/b",
    });
    const got = await new Promise<string>((res) => {
      let t = "";
      s.on("data", (d) => t += String(d));
      s.on("close", () => res(t));
    });
    assertEquals(got, "ok");
    assertEquals(seen, ["spiffe://skein.local/svc/a"]);
    // A client whose chain leads to another root is refused before onConnection.
    const s2 = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: stranger.certPem,
      key: stranger.keyPem,
      ca: made.root.certPem,
      expectSpiffe: "spiffe://skein.local/svc/b",
    }).catch(() => null);
    if (s2 !== null) await new Promise((res) => s2.on("close", res));
    assertEquals(seen.length, 1);
    // And a client that trusts only the other root refuses this server.
    await assertRejects(
      () =>
        mtlsConnect({
          host: "127.0.0.1",
          port,
          cert: stranger.certPem,
          key: stranger.keyPem,
          ca: other.root.certPem,
          expectSpiffe: "spiffe://skein.local/svc/b",
        }),
      Error,
    );
  } finally {
    await srv.close({ destroyConnections: true });
  }
});
