/**
 * Distrusted intermediates on the proxy-to-proxy hop (`MeshTlsState`): the inbound refuses a
 * leaf one signed, an open connection made with such a leaf is closed when the list grows, and
 * both outbound paths refuse a server presenting one. Leaves of the new intermediate pass.
 */
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
import { type Endpoint, writeAll } from "../forward/mod.ts";
import {
  _resetNodeOnly,
  connectMtls,
  listenMtls,
  type MeshTls,
  MeshTlsState,
  serviceSpiffeId,
} from "./mod.ts";
import { MtlsConnectError } from "../../common/tls/mod.ts";

const TD = "skein.local";
/** Liveness cap on waiting for something that must happen; not a timing assertion. */
const WAIT_LIMIT_MS = 20_000;

async function meshTls(ca: CaState, service: string): Promise<MeshTls> {
  const l = await issueCertificate(ca, { identity: { kind: "service", service }, now: Date.now() });
  return {
    material: { certPem: l.certPem, keyPem: l.keyPem, caPem: trustBundlePem(ca) },
    trustDomain: TD,
  };
}

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function rotated() {
  const made = await createOfflineRootCa({ trustDomain: TD, now: Date.now() });
  const next = await signIntermediate({
    rootCertPem: made.root.certPem,
    rootKeyPem: made.root.keyPem,
    now: Date.now(),
  });
  const after = await installIntermediate(made.state, { ...next, now: Date.now() });
  return {
    before: made.state,
    after,
    trust: {
      roots: [made.root.certPem],
      revoked: [],
      distrusted: [made.intermediate.certPem],
    },
  };
}

const ep = (port: number): Endpoint => ({
  key: `127.0.0.1:${port}`,
  hostname: "127.0.0.1",
  port,
  identity: serviceSpiffeId(TD, "ledger"),
});

Deno.test("the inbound refuses a leaf of a distrusted intermediate and closes open connections made with one", async () => {
  const { before, after, trust } = await rotated();
  const server = new MeshTlsState(await meshTls(after, "ledger"));
  const listener = await listenMtls(server, "127.0.0.1", 0, nullLogger, { mux: false });
  const stale = new MeshTlsState(await meshTls(before, "billing"));
  const fresh = new MeshTlsState(await meshTls(after, "billing"));
  const held: Deno.Conn[] = [];
  const node = { outbound: "node" } as const;
  try {
    const [c1, s1] = await Promise.all([
      connectMtls(stale, ep(listener.addr.port), undefined, node),
      listener.accept(),
    ]);
    const [c2, s2] = await Promise.all([
      connectMtls(fresh, ep(listener.addr.port), undefined, node),
      listener.accept(),
    ]);
    held.push(c1, s1, c2, s2);
    assertEquals(server.openConnections, 2);

    assertEquals(server.updateTrust(trust), 1, "the stale leaf's connection is closed");
    assertEquals(server.distrusted, trust.distrusted);
    const buf = new Uint8Array(8);
    assertEquals(await c1.read(buf).catch(() => null), null, "the stale caller sees the close");
    await writeAll(c2, new TextEncoder().encode("ping"));
    const n = await s2.read(buf);
    assertEquals(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "ping", "fresh one kept");

    // A new connection with the stale leaf never reaches accept().
    const refusedBefore = listener.stats!.refused.distrusted;
    const c3 = await connectMtls(stale, ep(listener.addr.port), undefined, node).catch(() => null);
    if (c3 !== null) held.push(c3);
    await waitUntil(
      () => listener.stats!.refused.distrusted === refusedBefore + 1,
      "the inbound to refuse the stale leaf",
    );
    // The same list again closes nothing more.
    assertEquals(server.updateTrust(trust), 0);
  } finally {
    for (const c of held) {
      try {
        c.close();
      } catch {
        // Closed already.
      }
    }
    listener.close();
  }
});

Deno.test("both outbound paths refuse a server whose leaf a distrusted intermediate signed", async () => {
  _resetNodeOnly();
  const { before, trust } = await rotated();
  const impostor = await listenMtls(await meshTls(before, "ledger"), "127.0.0.1", 0, nullLogger);
  const accepting = (async () => {
    for (;;) {
      const s = await impostor.accept().catch(() => null);
      if (s === null) return;
      s.close();
    }
  })();
  try {
    // Our own chain carries the same (old) intermediate, so the native check itself decides.
    const client = new MeshTlsState(await meshTls(before, "billing"));
    client.updateTrust(trust);
    for (const outbound of ["native", "node"] as const) {
      const e = await assertRejects(
        () => connectMtls(client, ep(impostor.addr.port), undefined, { outbound }),
        MtlsConnectError,
      );
      assert(/distrusted intermediate/.test((e as Error).message), `${outbound}: ${e}`);
    }
  } finally {
    impostor.close();
    await accepting;
  }
});
