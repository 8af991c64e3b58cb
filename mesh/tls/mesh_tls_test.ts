import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/assert.ts";
import { leaf, testCa } from "../../tests/security/_pki.ts";
import { type CaState, serviceDnsName, trustBundlePem } from "../../control/ca/mod.ts";
import * as x509 from "../../control/ca/_x509.ts";
import {
  EC_ALGORITHM,
  exportPrivateKeyPem,
  generateEcKeyPair,
  importPrivateKeyPem,
  mtlsConnect,
  MtlsConnectError,
} from "../../common/tls/mod.ts";
import { X509Certificate } from "node:crypto";
import { nullLogger } from "../../common/log.ts";
import {
  ConnectionPool,
  type Endpoint,
  HttpForwarder,
  NativeTlsConn,
  peerIdentityOf,
  type Router,
  TlsConn,
  writeAll,
} from "../forward/mod.ts";
import { staticRouter } from "../../tests/mesh_hotpath/static_router.ts";
import type { RequestHead } from "../http1/mod.ts";
import {
  _resetNodeOnly,
  connectMtls,
  listenMtls,
  meshServerName,
  type MeshTls,
  MeshTlsState,
  NATIVE_OUTBOUND_AVAILABLE,
  NATIVE_RETRY_AFTER_MS,
  serviceSpiffeId,
} from "./mod.ts";
import { sourceLabel } from "../proxy/router.ts";
import { MUX_ALPN, MuxConnector } from "../mux/mod.ts";
import { newSessionBalanceBuffer, SessionBalance } from "../mux/session_balance.ts";

const TD = "skein.local";

async function meshTls(ca: Awaited<ReturnType<typeof testCa>>, svc: string): Promise<MeshTls> {
  const l = await leaf(ca, svc);
  return {
    material: { certPem: l.certPem, keyPem: l.keyPem, caPem: trustBundlePem(ca) },
    trustDomain: TD,
  };
}

async function readAll(c: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(1024);
  let out = "";
  while (true) {
    const n = await c.read(buf);
    if (n === null) return out;
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
}

Deno.test("TlsConn carries bytes both ways over mTLS, half-closes, and knows the peer", async () => {
  const ca = await testCa();
  const server = await meshTls(ca, "ledger");
  const client = await meshTls(ca, "billing");
  const listener = await listenMtls(server, "127.0.0.1", 0, nullLogger);
  try {
    const ep: Endpoint = {
      key: "x",
      hostname: "127.0.0.1",
      port: listener.addr.port,
      identity: serviceSpiffeId(TD, "ledger"),
    };
    const [c, s] = await Promise.all([connectMtls(client, ep), listener.accept()]);
    assertEquals(peerIdentityOf(s), "spiffe://skein.local/svc/billing");
    assertEquals(c.peerIdentity, "spiffe://skein.local/svc/ledger");
    // Larger than one TLS record and than a read buffer. (A half-close right after a
    // multi-megabyte write can lose its FIN in Deno's node:tls: see docs/security.md.)
    const big = new Uint8Array(256 * 1024).fill(7);
    // Deno.Conn semantics: a write may be partial (the native connection's are), so writeAll.
    const sent = writeAll(c, big).then(() => c.closeWrite());
    let got = 0;
    const buf = new Uint8Array(16 * 1024);
    while (true) {
      const n = await s.read(buf);
      if (n === null) break;
      assertEquals(buf[0], 7);
      got += n;
    }
    await sent;
    assertEquals(got, big.length);
    // The client half-closed; the server can still answer.
    await s.write(new TextEncoder().encode("done"));
    await s.closeWrite();
    assertEquals(await readAll(c), "done");
    c.close();
    s.close();
  } finally {
    listener.close();
  }
});

Deno.test("connectMtls() refuses a server that is not the destination meant", async () => {
  const ca = await testCa();
  const listener = await listenMtls(await meshTls(ca, "ledger"), "127.0.0.1", 0, nullLogger);
  const client = await meshTls(ca, "billing");
  const base = { key: "x", hostname: "127.0.0.1", port: listener.addr.port };
  try {
    const e = await assertRejects(
      () => connectMtls(client, { ...base, identity: serviceSpiffeId(TD, "payments") }),
      MtlsConnectError,
    );
    assertEquals(e.kind, "identity");
    await assertRejects(() => connectMtls(client, base), Error, "no expected identity");
    // A client from another CA gets nothing: the server closes it before accept().
    const foreign = await meshTls(await testCa(), "billing");
    const c = await connectMtls(foreign, { ...base, identity: serviceSpiffeId(TD, "ledger") })
      .catch(() => null);
    if (c !== null) {
      const r = await c.read(new Uint8Array(16)).catch(() => null);
      assertEquals(r, null);
    }
  } finally {
    listener.close();
  }
});

Deno.test("the forwarder over mTLS: the inbound router sees the caller; a wrong server is a 502", async () => {
  const ca = await testCa();
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    return new Response("ledger-app");
  });
  const seen: (string | null)[] = [];
  const toApp = staticRouter({
    endpoints: [{ key: "app", hostname: "127.0.0.1", port: app.addr.port }],
  });
  const inboundRouter: Router = {
    route(head: RequestHead, listener, client) {
      seen.push(client.identity);
      return toApp.route(head, listener, client);
    },
  };
  const inbound = new HttpForwarder(
    await listenMtls(await meshTls(ca, "ledger"), "127.0.0.1", 0, nullLogger),
    {
      node: "in",
      listener: { name: "inbound", protocol: "http" },
      router: inboundRouter,
      logger: nullLogger,
    },
  );
  const client = await meshTls(ca, "billing");
  const pool = new ConnectionPool({
    connect: (ep) => connectMtls(client, ep, undefined, { outbound: "auto" }),
  });
  const ep = (svc: string): Endpoint => ({
    key: `127.0.0.1:${inbound.addr.port}`,
    hostname: "127.0.0.1",
    port: inbound.addr.port,
    identity: serviceSpiffeId(TD, svc),
  });
  const outbound = (svc: string) =>
    new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
      node: "out",
      listener: { name: "upstream", protocol: "http" },
      router: staticRouter({ cluster: svc, endpoints: [ep(svc)] }),
      logger: nullLogger,
      pool,
    });
  const good = outbound("ledger");
  const wrong = outbound("payments");
  try {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${good.addr.port}/`);
      assertEquals(await r.text(), "ledger-app");
    }
    assertEquals(seen, Array(3).fill("spiffe://skein.local/svc/billing"));
    assert(pool.stats().reused >= 1, JSON.stringify(pool.stats()));

    const r = await fetch(`http://127.0.0.1:${wrong.addr.port}/`);
    const body = await r.text();
    assertEquals(r.status, 502);
    assertEquals(r.headers.get("x-skein-error"), "upstream_connect_failure");
    assertMatch(body, /expected spiffe:\/\/skein\.local\/svc\/payments/);
    assertEquals(seen.length, 3, "the wrong destination never reached the inbound router");
  } finally {
    await good.close();
    await wrong.close();
    pool.close();
    await inbound.close();
    await app.shutdown();
  }
});

Deno.test("sourceLabel() names the calling service", () => {
  assertEquals(sourceLabel("spiffe://skein.local/svc/billing"), "billing");
  assertEquals(
    sourceLabel("spiffe://skein.local/control/cp-1"),
    "spiffe://skein.local/control/cp-1",
  );
});

// ---------------------------------------------------------------------------------------------
// The native outbound path (Deno.connectTls verifying `<service>.svc.<td>`)

/** A leaf like those issued before service leaves carried the DNS SAN: URI SAN only. */
async function uriOnlyLeaf(ca: CaState, service: string): Promise<MeshTls> {
  const root = ca.roots[0]!;
  const keys = await generateEcKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "4a01",
    subject: `CN=${service}`,
    issuer: new x509.X509Certificate(root.certPem).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingAlgorithm: EC_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: await importPrivateKeyPem(root.keyPem!),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        { type: "url", value: serviceSpiffeId(TD, service) },
      ]),
    ],
  });
  return {
    material: {
      certPem: cert.toString("pem") + "\n",
      keyPem: await exportPrivateKeyPem(keys.privateKey),
      caPem: trustBundlePem(ca),
    },
    trustDomain: TD,
  };
}

const AUTO = { outbound: "auto" } as const;

async function echoOnce(c: Deno.Conn, s: Deno.Conn): Promise<string> {
  await writeAll(c, new TextEncoder().encode("ping"));
  const buf = new Uint8Array(16);
  const n = await s.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0));
}

Deno.test("meshServerName() follows the CA's DNS SAN rule", () => {
  for (const svc of ["ledger", "a.b-c", "x1"]) {
    assertEquals(meshServerName(TD, svc), serviceDnsName(TD, svc));
  }
  for (const svc of ["Ledger", "led_ger", "x".repeat(64), "-a"]) {
    assertEquals(meshServerName(TD, svc), null);
    assertEquals(serviceDnsName(TD, svc), null);
  }
});

Deno.test("the native path: CA-issued leaves connect natively, impostors and revoked ids are refused", async () => {
  assert(NATIVE_OUTBOUND_AVAILABLE, "Deno 2.9's serverNameSymbol is expected");
  _resetNodeOnly();
  const ca = await testCa();
  const listener = await listenMtls(await meshTls(ca, "ledger"), "127.0.0.1", 0, nullLogger);
  const client = new MeshTlsState(await meshTls(ca, "billing"));
  const ep = (svc: string): Endpoint => ({
    key: `127.0.0.1:${listener.addr.port}`,
    hostname: "127.0.0.1",
    port: listener.addr.port,
    identity: serviceSpiffeId(TD, svc),
  });
  const held: Deno.Conn[] = [];
  try {
    // The right server: a native connection, both sides know who the other is.
    const [c, s] = await Promise.all([
      connectMtls(client, ep("ledger"), undefined, AUTO),
      listener.accept(),
    ]);
    held.push(c, s);
    assert(c instanceof NativeTlsConn, "auto uses the native client");
    assertEquals(c.peerIdentity, "spiffe://skein.local/svc/ledger");
    assertEquals(peerIdentityOf(s), "spiffe://skein.local/svc/billing");
    assertEquals(await echoOnce(c, s), "ping");
    assertEquals(client.openConnections, 1);
    // More than a TLS record and than the native write buffer, both ways.
    const big = new Uint8Array(300 * 1024).map((_, i) => i & 0xff);
    for (const [from, to] of [[c, s], [s, c]] as const) {
      const sent = writeAll(from, big);
      const got = new Uint8Array(big.length);
      let off = 0;
      while (off < big.length) {
        const n = await to.read(got.subarray(off));
        assert(n !== null, "no EOF mid-transfer");
        off += n;
      }
      await sent;
      assertEquals(got, big);
    }

    // An impostor: the server holds a valid mesh certificate, but of ledger, while we dial
    // payments. rustls refuses the name on its own...
    const e = await assertRejects(
      () => connectMtls(client, ep("payments"), undefined, { outbound: "native" }),
      MtlsConnectError,
    );
    assertMatch(e.message, /payments\.svc\.skein\.local/);
    // ...and in auto mode node:tls gets the last word, with the SPIFFE id in the reason.
    const e2 = await assertRejects(
      () => connectMtls(client, ep("payments"), undefined, AUTO),
      MtlsConnectError,
    );
    assertEquals(e2.kind, "identity");
    assertMatch(e2.message, /server is spiffe:\/\/skein\.local\/svc\/ledger/);

    // Another CA's client certificate: the server cuts it right after the handshake.
    const foreign = await meshTls(await testCa(), "billing");
    const f = await connectMtls(foreign, ep("ledger"), undefined, { outbound: "native" })
      .catch(() => null);
    if (f !== null) {
      held.push(f);
      const r = await f.read(new Uint8Array(16)).catch(() => null);
      assertEquals(r, null);
    }

    // Revocation: open native connections to the id are cut, new ones refused before dialling.
    assertEquals(
      client.updateTrust({ roots: [trustBundlePem(ca)], revoked: [ep("ledger").identity!] }),
      1,
    );
    assertEquals(client.openConnections, 0);
    await assertRejects(() => c.read(new Uint8Array(8)), Error);
    await assertRejects(
      () => connectMtls(client, ep("ledger"), undefined, { outbound: "native" }),
      MtlsConnectError,
      "revoked",
    );
  } finally {
    for (const x of held) {
      try {
        x.close();
      } catch {
        // closed
      }
    }
    listener.close();
  }
});

Deno.test("the native path falls back to node:tls for a server whose leaf has no DNS SAN", async () => {
  _resetNodeOnly();
  const ca = await testCa();
  const listener = await listenMtls(await uriOnlyLeaf(ca, "ledger"), "127.0.0.1", 0, nullLogger);
  const client = await meshTls(ca, "billing");
  const ep: Endpoint = {
    key: `127.0.0.1:${listener.addr.port}`,
    hostname: "127.0.0.1",
    port: listener.addr.port,
    identity: serviceSpiffeId(TD, "ledger"),
  };
  let clock = 1_000;
  const now = () => clock;
  const held: Deno.Conn[] = [];
  try {
    await assertRejects(() => connectMtls(client, ep, undefined, { outbound: "native" }), Error);
    const [c, s] = await Promise.all([
      connectMtls(client, ep, undefined, { ...AUTO, now }),
      listener.accept(),
    ]);
    held.push(c, s);
    assert(c instanceof TlsConn, "fell back to node:tls");
    assertEquals(await echoOnce(c, s), "ping");
    // Remembered: the next connection goes straight to node:tls (one handshake, not two).
    const failed = listener.stats!.refused.handshake_failed;
    assert(failed >= 2, `the native attempts were refused handshakes (${failed})`);
    const [c2, s2] = await Promise.all([
      connectMtls(client, ep, undefined, { ...AUTO, now }),
      listener.accept(),
    ]);
    held.push(c2, s2);
    assert(c2 instanceof TlsConn);
    assertEquals(listener.stats!.refused.handshake_failed, failed);
    // After NATIVE_RETRY_AFTER_MS the native client is tried again (and falls back again).
    clock += NATIVE_RETRY_AFTER_MS;
    const [c3, s3] = await Promise.all([
      connectMtls(client, ep, undefined, { ...AUTO, now }),
      listener.accept(),
    ]);
    held.push(c3, s3);
    assert(c3 instanceof TlsConn);
    assertEquals(listener.stats!.refused.handshake_failed, failed + 1);
  } finally {
    for (const x of held) x.close();
    listener.close();
  }
});

Deno.test("one inbound serves each local service's certificate by SNI, on both client paths, across renewal", async () => {
  const ca = await testCa();
  const alpha = await meshTls(ca, "alpha");
  const beta = (await meshTls(ca, "beta")).material;
  const state = new MeshTlsState({
    ...alpha,
    service: "alpha",
    others: [{ service: "beta", material: beta }],
  });
  const listener = await listenMtls(state, "127.0.0.1", 0, nullLogger);
  const client = await meshTls(ca, "caller");
  const base = { key: "x", hostname: "127.0.0.1", port: listener.addr.port };
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) accepted.push(c);
  })();
  try {
    const modes = NATIVE_OUTBOUND_AVAILABLE ? ["node", "native"] as const : ["node"] as const;
    for (const outbound of modes) {
      for (const svc of ["alpha", "beta"]) {
        const c = await connectMtls(client, { ...base, identity: serviceSpiffeId(TD, svc) }, 5000, {
          outbound,
        });
        assertEquals(peerIdentityOf(c), serviceSpiffeId(TD, svc), `${outbound} ${svc}`);
        c.close();
      }
    }
    // Renewal of beta only: new handshakes asking for beta get the new leaf; alpha is untouched.
    const beta2 = (await meshTls(ca, "beta")).material;
    state.updateMaterial(beta2, "beta");
    assertEquals(state.others.map((o) => o.material.certPem), [beta2.certPem]);
    assertEquals(state.material.certPem, alpha.material.certPem);
    const served = async (servername: string) => {
      const sock = await mtlsConnect({
        host: "127.0.0.1",
        port: base.port,
        cert: client.material.certPem,
        key: client.material.keyPem,
        ca: client.material.caPem,
        expectSpiffe: () => true,
        servername,
      });
      const serial = sock.getPeerCertificate().serialNumber;
      sock.destroy();
      return serial.toUpperCase();
    };
    const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toUpperCase();
    assertEquals(await served(meshServerName(TD, "beta")!), serialOf(beta2.certPem));
    assertEquals(await served(meshServerName(TD, "alpha")!), serialOf(alpha.material.certPem));
    // A rotation's bundle reaches every certificate's context, so each still verifies callers.
    state.updateTrust({ roots: [trustBundlePem(ca)], revoked: [] });
    for (const svc of ["alpha", "beta"]) {
      const c2 = await connectMtls(client, { ...base, identity: serviceSpiffeId(TD, svc) });
      c2.close();
    }
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const a of accepted) {
      try {
        a.close();
      } catch {
        // Closed already.
      }
    }
  }
});

Deno.test("outbound connections present the certificate of the local service they are made for", async () => {
  const ca = await testCa();
  const listener = await listenMtls(await meshTls(ca, "ledger"), "127.0.0.1", 0, nullLogger);
  const alpha = await meshTls(ca, "alpha");
  const client = new MeshTlsState({
    ...alpha,
    service: "alpha",
    others: [{ service: "beta", material: (await meshTls(ca, "beta")).material }],
  });
  const ep: Endpoint = {
    key: `127.0.0.1:${listener.addr.port}`,
    hostname: "127.0.0.1",
    port: listener.addr.port,
    identity: serviceSpiffeId(TD, "ledger"),
  };
  /** The caller identity the server saw for one connection made with `opts`. */
  const seenAs = async (opts: Parameters<typeof connectMtls>[3]) => {
    const [c, s] = await Promise.all([connectMtls(client, ep, 5000, opts), listener.accept()]);
    try {
      return peerIdentityOf(s);
    } finally {
      c.close();
      s.close();
    }
  };
  try {
    const modes = NATIVE_OUTBOUND_AVAILABLE ? ["node", "native"] as const : ["node"] as const;
    for (const outbound of modes) {
      assertEquals(await seenAs({ outbound }), serviceSpiffeId(TD, "alpha"), outbound);
      assertEquals(await seenAs({ outbound, caller: "alpha" }), serviceSpiffeId(TD, "alpha"));
      assertEquals(await seenAs({ outbound, caller: "beta" }), serviceSpiffeId(TD, "beta"));
    }
    // New beta material is what the next connection made for beta presents: here a leaf of
    // another CA, which the server cuts, while connections made for alpha go on as before.
    client.updateMaterial((await meshTls(await testCa(), "beta")).material, "beta");
    const refused = () => Object.values(listener.stats!.refused).reduce((a, b) => a + b, 0);
    const before = refused();
    let bound: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      connectMtls(client, ep, 5000, { outbound: "node", caller: "beta" }).then(
        async (c) => {
          const n = await c.read(new Uint8Array(8)).catch(() => null);
          c.close();
          return n === null ? "cut" : "data";
        },
        () => "refused",
      ),
      // Only a bound on a hang: an accepted connection would wait here for bytes forever.
      new Promise<string>((r) => bound = setTimeout(() => r("accepted"), 10_000)),
    ]);
    clearTimeout(bound);
    assert(outcome === "cut" || outcome === "refused", outcome);
    // The server counts it once its side of the handshake has failed, maybe after the client.
    for (let i = 0; i < 100 && refused() === before; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert(refused() > before, "the server counted the refusal");
    assertEquals(await seenAs({ outbound: "node" }), serviceSpiffeId(TD, "alpha"));
    // A service this proxy holds no certificate of is refused, never swapped for another's.
    await assertRejects(
      () => connectMtls(client, ep, 5000, { caller: "gamma" }),
      Error,
      "no certificate for local service gamma",
    );
  } finally {
    listener.close();
  }
});

Deno.test("skein-mux/1 by ALPN: streams carry the caller's identity, revocation cuts them", async () => {
  const ca = await testCa();
  const server = new MeshTlsState(await meshTls(ca, "ledger"));
  const client = await meshTls(ca, "billing");
  const listener = await listenMtls(server, "127.0.0.1", 0, nullLogger);
  const ep: Endpoint = {
    key: "x",
    hostname: "127.0.0.1",
    port: listener.addr.port,
    identity: serviceSpiffeId(TD, "ledger"),
  };
  const muxer = new MuxConnector({
    dial: async (e) => {
      const conn = await connectMtls(client, e, undefined, {
        outbound: "node",
        alpnProtocols: [MUX_ALPN, "http/1.1"],
      });
      return { conn, mux: conn.alpnProtocol === MUX_ALPN, peerIdentity: conn.peerIdentity };
    },
  });
  try {
    const streams = await Promise.all([muxer.connect(ep), muxer.connect(ep), muxer.connect(ep)]);
    assertEquals(muxer.stats().sessions, 1, "the three streams share one connection");
    for (const [i, s] of streams.entries()) {
      assertEquals(peerIdentityOf(s), serviceSpiffeId(TD, "ledger"));
      await s.write(new TextEncoder().encode(`stream ${i}`));
      await s.closeWrite();
    }
    const accepted = [await listener.accept(), await listener.accept(), await listener.accept()];
    const got = await Promise.all(accepted.map((a) => readAll(a)));
    assertEquals(got.sort(), ["stream 0", "stream 1", "stream 2"]);
    for (const a of accepted) assertEquals(peerIdentityOf(a), serviceSpiffeId(TD, "billing"));

    // A caller that offers no ALPN still gets a plain connection of its own.
    const plain = await connectMtls(client, ep);
    assertEquals(plain.alpnProtocol, null);
    const p = await listener.accept();
    assert(p instanceof TlsConn, "a plain mesh connection, not a stream");
    plain.close();
    p.close();

    // Revoking the caller closes its connection, and with it every stream on it. (The plain
    // connection closed above may still be counted until its close event has run.)
    const live = await muxer.connect(ep);
    await live.write(new Uint8Array([1]));
    const liveIn = await listener.accept();
    assertEquals(await liveIn.read(new Uint8Array(4)), 1);
    const pending = liveIn.read(new Uint8Array(4));
    const cut = server.updateTrust({
      roots: [trustBundlePem(ca)],
      revoked: [serviceSpiffeId(TD, "billing")],
    });
    assert(cut >= 1, `revocation closed ${cut} connections`);
    await assertRejects(() => pending, Error);
    await assertRejects(() => live.read(new Uint8Array(4)), Error);
    for (const s of [...streams, ...accepted, live, liveIn]) {
      try {
        s.close();
      } catch {
        // Closed with the session.
      }
    }
  } finally {
    muxer.close();
    listener.close();
  }
});

Deno.test("two workers on one port even out mux sessions; moving one loses no call", async () => {
  const ca = await testCa();
  const buf = newSessionBalanceBuffer();
  const counts = new Int32Array(buf);
  const first = await listenMtls(
    new MeshTlsState(await meshTls(ca, "ledger")),
    "127.0.0.1",
    0,
    nullLogger,
    { reusePort: true, balance: new SessionBalance(buf, 0, 2) },
  );
  const port = first.addr.port;
  const second = await listenMtls(
    new MeshTlsState(await meshTls(ca, "ledger")),
    "127.0.0.1",
    port,
    nullLogger,
    { reusePort: true, balance: new SessionBalance(buf, 1, 2) },
  );
  // Each "worker" answers every stream with one byte naming itself.
  const serve = async (l: Deno.Listener, tag: number) => {
    for await (const c of l) {
      void (async () => {
        const b = new Uint8Array(16);
        while ((await c.read(b).catch(() => null)) !== null) {
          await c.write(new Uint8Array([tag])).catch(() => {});
        }
        try {
          c.close();
        } catch {
          // Closed with its session.
        }
      })();
    }
  };
  const serving = [serve(first, 0), serve(second, 1)];
  const client = await meshTls(ca, "billing");
  const ep: Endpoint = {
    key: "x",
    hostname: "127.0.0.1",
    port,
    identity: serviceSpiffeId(TD, "ledger"),
  };
  const muxers: MuxConnector[] = [];
  let dials = 0;
  try {
    // Six calling workers, one after the other: each keeps calling until its session is one
    // the callee admitted (a redirected session still answers the call sent on it).
    for (let w = 0; w < 6; w++) {
      const muxer = new MuxConnector({
        dial: async (e) => {
          dials++;
          const conn = await connectMtls(client, e, undefined, {
            outbound: "node",
            alpnProtocols: [MUX_ALPN, "http/1.1"],
          });
          return { conn, mux: conn.alpnProtocol === MUX_ALPN, peerIdentity: conn.peerIdentity };
        },
      });
      muxers.push(muxer);
      let settled = false;
      for (let call = 0; call < 60 && !settled; call++) {
        const s = await muxer.connect(ep);
        await s.write(new Uint8Array([1]));
        const got = new Uint8Array(1);
        assertEquals(await s.read(got), 1, "every call is answered, moved session or not");
        settled = (s as unknown as { reusable: boolean }).reusable;
        s.close();
      }
      assert(settled, `calling worker ${w} found an admitting worker`);
      assert(Math.abs(counts[0]! - counts[1]!) <= 1, `counts ${counts[0]}/${counts[1]}`);
    }
    assertEquals([counts[0], counts[1]], [3, 3]);
    assert(dials >= 6);
  } finally {
    for (const m of muxers) m.close();
    first.close();
    second.close();
    await Promise.allSettled(serving);
  }
  // Closed listeners stop counting, so nobody defers to them.
  assertEquals([counts[0], counts[1]], [-1, -1]);
});
