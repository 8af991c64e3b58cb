import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import {
  type CaState,
  createOfflineRootCa,
  installIntermediate,
  issueCertificate,
  signIntermediate,
  trustBundlePem,
} from "../../control/ca/mod.ts";
import { nullLogger } from "../../common/log.ts";
import { X509Certificate } from "node:crypto";
import { type Endpoint, NativeTlsConn, TlsConn, writeAll } from "../forward/mod.ts";
import {
  _resetNodeOnly,
  connectMtls,
  listenMtls,
  type MeshTls,
  MeshTlsState,
  NATIVE_OUTBOUND_AVAILABLE,
  serviceSpiffeId,
} from "./mod.ts";
import { trustReport } from "../identity/mod.ts";

const TD = "skein.local";
const AUTO = { outbound: "auto" } as const;

async function meshTls(ca: CaState, service: string): Promise<MeshTls> {
  const l = await issueCertificate(ca, { identity: { kind: "service", service }, now: Date.now() });
  return {
    material: { certPem: l.certPem, keyPem: l.keyPem, caPem: trustBundlePem(ca) },
    trustDomain: TD,
  };
}

async function echoOnce(c: Deno.Conn, s: Deno.Conn): Promise<string> {
  await writeAll(c, new TextEncoder().encode("ping"));
  const buf = new Uint8Array(16);
  const n = await s.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0));
}

Deno.test("proxy to proxy with an offline root: the same intermediate connects natively, another of the same root through node:tls, another root's not at all", async () => {
  assert(NATIVE_OUTBOUND_AVAILABLE, "Deno 2.9's serverNameSymbol is expected");
  _resetNodeOnly();
  const made = await createOfflineRootCa({ trustDomain: TD, now: Date.now() });
  const next = await signIntermediate({
    rootCertPem: made.root.certPem,
    rootKeyPem: made.root.keyPem,
    now: Date.now(),
  });
  const rotated = await installIntermediate(made.state, { ...next, now: Date.now() });
  const other = await createOfflineRootCa({ trustDomain: TD, now: Date.now() });
  const servers = {
    same: await listenMtls(await meshTls(made.state, "ledger"), "127.0.0.1", 0, nullLogger),
    rotated: await listenMtls(await meshTls(rotated, "ledger"), "127.0.0.1", 0, nullLogger),
    foreign: await listenMtls(await meshTls(other.state, "ledger"), "127.0.0.1", 0, nullLogger),
  };
  const client = new MeshTlsState(await meshTls(made.state, "billing"));
  const ep = (l: { addr: Deno.NetAddr }): Endpoint => ({
    key: `127.0.0.1:${l.addr.port}`,
    hostname: "127.0.0.1",
    port: l.addr.port,
    identity: serviceSpiffeId(TD, "ledger"),
  });
  const held: Deno.Conn[] = [];
  try {
    const [c, s] = await Promise.all([
      connectMtls(client, ep(servers.same), undefined, AUTO),
      servers.same.accept(),
    ]);
    held.push(c, s);
    assert(c instanceof NativeTlsConn, "a leaf from our own intermediate passes the native check");
    assertEquals(await echoOnce(c, s), "ping");

    // A leaf from the new intermediate while ours is from the old one (mid-rotation): the
    // native client cannot see the server's intermediate, so node:tls verifies the chain.
    // The server may accept the native attempt (its own check passes) before the client drops
    // it, so every accepted connection is read: the one that says "ping" is the fallback's.
    let pinged: (v: string) => void = () => {};
    const got = new Promise<string>((r) => pinged = r);
    void (async () => {
      while (true) {
        const s = await servers.rotated.accept().catch(() => null);
        if (s === null) return;
        held.push(s);
        void (async () => {
          const buf = new Uint8Array(16);
          const n = await s.read(buf).catch(() => null);
          if (n !== null) pinged(new TextDecoder().decode(buf.subarray(0, n)));
        })();
      }
    })();
    const c2 = await connectMtls(client, ep(servers.rotated), undefined, AUTO);
    held.push(c2);
    assert(c2 instanceof TlsConn, "fell back to node:tls");
    assertEquals(c2.peerIdentity, "spiffe://skein.local/svc/ledger");
    await writeAll(c2, new TextEncoder().encode("ping"));
    assertEquals(await got, "ping");

    // Another root's intermediate: refused on both paths.
    servers.foreign.accept().then((x) => held.push(x), () => {});
    await assertRejects(() => connectMtls(client, ep(servers.foreign), undefined, AUTO), Error);
  } finally {
    for (const x of held) x.close();
    for (const l of Object.values(servers)) l.close();
  }
});

Deno.test("a proxy's trust report names the root its leaf reaches and the intermediate that signed it", async () => {
  const made = await createOfflineRootCa({ trustDomain: TD, now: Date.now() });
  const m = (await meshTls(made.state, "ledger")).material;
  const root = new X509Certificate(made.root.certPem).fingerprint256;
  const inter = new X509Certificate(made.intermediate.certPem).fingerprint256;
  assertEquals(trustReport(m), { roots: [root], leaf_root: root, leaf_issuer: inter });
  const other = await createOfflineRootCa({ trustDomain: TD, now: Date.now() });
  const foreign = (await meshTls(other.state, "ledger")).material;
  assertEquals(trustReport({ ...foreign, caPem: m.caPem }).leaf_root, null);
});
