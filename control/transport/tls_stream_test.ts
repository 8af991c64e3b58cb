import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { nodeId } from "../../common/ids.ts";
import { MtlsConnectError, type TlsMaterial } from "../../common/tls/mod.ts";
import {
  type CaState,
  createCa,
  type Identity,
  issueCertificate,
  trustBundlePem,
} from "../ca/mod.ts";
import { tlsDialer, tlsListenerFactory, type TransportTlsSource } from "./tls_stream.ts";
import type { ByteStream } from "./stream.ts";

const TD = "skein.local";
const LOOPBACK = "127.0.0.1";

/** A source whose material the test can swap, as renewals and rotations do. */
class SwappableSource implements TransportTlsSource {
  readonly trustDomain = TD;
  current: TlsMaterial;
  revoked = new Set<string>();
  constructor(m: TlsMaterial) {
    this.current = m;
  }
  material(): TlsMaterial {
    return this.current;
  }
  isRevoked(id: string): boolean {
    return this.revoked.has(id);
  }
}

async function materialFor(ca: CaState, identity: Identity): Promise<TlsMaterial> {
  const c = await issueCertificate(ca, { identity, now: Date.now() });
  return { certPem: c.certPem, keyPem: c.keyPem, caPem: trustBundlePem(ca) };
}

const control = (node: string): Identity => ({ kind: "control", node });

async function readText(s: ByteStream, n: number): Promise<string> {
  const buf = new Uint8Array(n);
  let at = 0;
  while (at < n) {
    const k = await s.read(buf.subarray(at));
    if (k === null) break;
    at += k;
  }
  return new TextDecoder().decode(buf.subarray(0, at));
}

Deno.test("tlsDialer/tlsListenerFactory: streams carry bytes and the verified peer ids", async () => {
  const ca = await createCa({ trustDomain: TD, now: Date.now() });
  const server = new SwappableSource(await materialFor(ca, control("cp-1")));
  const client = new SwappableSource(await materialFor(ca, control("cp-2")));
  const l = await tlsListenerFactory({ source: server }).listen({ hostname: LOOPBACK, port: 0 });
  try {
    const accepted = l.accept();
    const out = await tlsDialer({ source: client }).dial(
      l.addr,
      new AbortController().signal,
      nodeId("cp-1"),
    );
    const inbound = await accepted;
    assertEquals(out.peerIdentity()?.uris, [`spiffe://${TD}/control/cp-1`]);
    assertEquals(inbound.peerIdentity()?.uris, [`spiffe://${TD}/control/cp-2`]);
    await out.write(new TextEncoder().encode("hello"));
    assertEquals(await readText(inbound, 5), "hello");
    out.close();
    out.close(); // idempotent
    assertEquals(await inbound.read(new Uint8Array(8)), null);
    inbound.close();
  } finally {
    l.close();
  }
});

Deno.test("tlsDialer refuses a server that is not the peer named, or is revoked", async () => {
  const ca = await createCa({ trustDomain: TD, now: Date.now() });
  const server = new SwappableSource(await materialFor(ca, control("cp-1")));
  const client = new SwappableSource(await materialFor(ca, control("cp-2")));
  const l = await tlsListenerFactory({ source: server }).listen({ hostname: LOOPBACK, port: 0 });
  const dial = (peer?: string) =>
    tlsDialer({ source: client }).dial(
      l.addr,
      new AbortController().signal,
      peer === undefined ? undefined : nodeId(peer),
    );
  try {
    const e = await assertRejects(dial("cp-3"), MtlsConnectError);
    assertEquals(e.kind, "identity");
    // Without a peer name, any control node of the domain will do.
    (await dial()).close();
    client.revoked.add(`spiffe://${TD}/control/cp-1`);
    assertEquals((await assertRejects(dial("cp-1"), MtlsConnectError)).kind, "identity");
    const aborted = new AbortController();
    aborted.abort(new Error("shutting down"));
    await assertRejects(
      tlsDialer({ source: client }).dial(l.addr, aborted.signal, nodeId("cp-1")),
      Error,
    );
  } finally {
    l.close();
  }
});

Deno.test("tlsListenerFactory reads material per connection: a swapped leaf serves the next handshake", async () => {
  const caA = await createCa({ trustDomain: TD, now: Date.now() });
  const caB = await createCa({ trustDomain: TD, now: Date.now() });
  const server = new SwappableSource(await materialFor(caA, control("cp-1")));
  const clientB = new SwappableSource(await materialFor(caB, control("cp-2")));
  const l = await tlsListenerFactory({ source: server }).listen({ hostname: LOOPBACK, port: 0 });
  const dial = () => tlsDialer({ source: clientB }).dial(l.addr, new AbortController().signal);
  try {
    // A client of CA B does not trust CA A's leaf.
    assertEquals((await assertRejects(dial(), MtlsConnectError)).kind, "tls");
    server.current = await materialFor(caB, control("cp-1"));
    const accepted = l.accept();
    const s = await dial();
    const inbound = await accepted;
    assert(inbound.peerIdentity()?.uris[0]?.endsWith("/control/cp-2"));
    s.close();
    inbound.close();
  } finally {
    l.close();
  }
  await assertRejects(l.accept(), Error);
});
