/**
 * createMtlsServer against outside clients (openssl s_client, curl) and plaintext: only a valid,
 * unrevoked certificate from the mesh CA gets past the handshake.
 */
import net from "node:net";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { revocationChecker, revokeIdentity, trustBundlePem } from "../../control/ca/mod.ts";
import { mtlsConnect, MtlsConnectError } from "../../common/tls/mod.ts";
import { leaf, plaintextExchange, run, testCa, whoamiServer, writePair } from "./_pki.ts";

const HOUR = 3_600_000;

Deno.test("createMtlsServer() admits only valid mesh certificates (openssl, curl, plaintext)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_mtls_" });
  let ca = await testCa();
  const other = await testCa();
  ca = revokeIdentity(ca, "spiffe://skein.local/svc/mallory", { now: Date.now() });
  const server = await leaf(ca, "ledger", { extraSans: { ip: ["127.0.0.1"] } });
  const good = await writePair(dir, "good", await leaf(ca, "payments"));
  const foreign = await writePair(dir, "foreign", await leaf(other, "payments"));
  const expired = await writePair(
    dir,
    "expired",
    await leaf(ca, "payments", { now: Date.now() - 48 * HOUR }),
  );
  // The revoked identity's certificate predates the revocation: only the hook stops it.
  const revokedCert = await writePair(
    dir,
    "revoked",
    await leaf({ ...ca, revoked: [] }, "mallory"),
  );
  const caFile = `${dir}/ca.pem`;
  await Deno.writeTextFile(caFile, trustBundlePem(ca));
  const { srv, port, seen } = await whoamiServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: trustBundlePem(ca),
    isRevoked: revocationChecker(ca),
    trustDomain: "skein.local",
  });
  const url = `https://127.0.0.1:${port}/`;
  const curl = (pair?: { cert: string; key: string }) =>
    run("curl", [
      "-sS",
      "--max-time",
      "10",
      "--cacert",
      caFile,
      ...(pair ? ["--cert", pair.cert, "--key", pair.key] : []),
      url,
    ]);
  const sClient = (extra: string[]) =>
    run("openssl", [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-CAfile",
      caFile,
      "-quiet",
      ...extra,
    ], "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
  try {
    // The one that must work.
    const ok = await curl(good);
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(ok.stdout, "spiffe://skein.local/svc/payments\n");

    for (
      const [name, pair] of [
        ["no certificate", undefined],
        ["another CA", foreign],
        ["expired", expired],
        ["revoked", revokedCert],
      ] as const
    ) {
      const r = await curl(pair);
      assert(r.code !== 0, `curl with ${name} must fail, got ${r.code}: ${r.stdout}`);
      assert(!r.stdout.includes("spiffe://"), `${name}: ${r.stdout}`);
    }

    const sOk = await sClient(["-cert", good.cert, "-key", good.key]);
    assertMatch(sOk.stdout, /HTTP\/1\.1 200 OK/);
    for (
      const extra of [[], ["-cert", foreign.cert, "-key", foreign.key], [
        "-cert",
        expired.cert,
        "-key",
        expired.key,
      ]]
    ) {
      const r = await sClient(extra);
      assert(!r.stdout.includes("200 OK"), `s_client ${extra.join(" ")}: ${r.stdout}`);
    }
    // TLS 1.3 only: a TLS 1.2 client does not even finish the handshake.
    const t12 = await sClient(["-tls1_2", "-cert", good.cert, "-key", good.key]);
    assert(!t12.stdout.includes("200 OK"));
    assert(t12.code !== 0, "TLS 1.2 handshake must fail");

    // Plaintext gets nothing an HTTP client could read.
    const plain = await plaintextExchange(port, "GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    assert(!plain.includes("HTTP/1.1"), JSON.stringify(plain.slice(0, 80)));

    assertEquals(new Set(seen), new Set(["spiffe://skein.local/svc/payments"]));
    assert(srv.stats.refused.revoked >= 1, JSON.stringify(srv.stats));
    assert(srv.stats.refused.handshake_failed >= 5, JSON.stringify(srv.stats));
    assertEquals(srv.stats.accepted, seen.length);
  } finally {
    await srv.close({ destroyConnections: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mtlsConnect() checks the server's SPIFFE id, not its host name", async () => {
  const ca = await testCa();
  const server = await leaf(ca, "ledger");
  const client = await leaf(ca, "payments");
  const { srv, port } = await whoamiServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: trustBundlePem(ca),
  });
  const base = {
    host: "127.0.0.1",
    port,
    cert: client.certPem,
    key: client.keyPem,
    ca: trustBundlePem(ca),
  };
  try {
    const s = await mtlsConnect({ ...base, expectSpiffe: "spiffe://skein.local/svc/ledger" });
    const reply = await new Promise<string>((resolve) => {
      s.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)));
      s.write("GET / HTTP/1.1\r\n\r\n");
    });
    assertMatch(reply, /x-peer: spiffe:\/\/skein.local\/svc\/payments/);
    s.destroy();
    const e = await assertRejects(
      mtlsConnect({ ...base, expectSpiffe: "spiffe://skein.local/svc/payments" }),
      MtlsConnectError,
    );
    assertEquals(e.kind, "identity");
    const e2 = await assertRejects(
      mtlsConnect({ ...base, expectSpiffe: (id) => id.kind === "control" }),
      MtlsConnectError,
    );
    assertEquals(e2.kind, "identity");
    const e3 = await assertRejects(
      mtlsConnect({
        ...base,
        expectSpiffe: "spiffe://skein.local/svc/ledger",
        isRevoked: (id) => id.endsWith("/ledger"),
      }),
      MtlsConnectError,
    );
    assertEquals(e3.kind, "identity");
  } finally {
    await srv.close({ destroyConnections: true });
  }
});

Deno.test("createMtlsServer() closes stalled handshakes and bounds concurrent ones", async () => {
  const ca = await testCa();
  const server = await leaf(ca, "ledger");
  const { srv, port } = await whoamiServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: trustBundlePem(ca),
    maxConcurrentHandshakes: 2,
    handshakeTimeoutMs: 3000, // long enough that a stalled machine still sees all three at once
  });
  const idle = () =>
    new Promise<net.Socket>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => resolve(s));
      s.on("error", () => {});
    });
  const closed = (s: net.Socket) => new Promise<void>((r) => s.once("close", () => r()));
  try {
    const a = await idle();
    const b = await idle();
    // Let the server see both before the third arrives.
    for (let i = 0; i < 1000 && srv.stats.handshakesInFlight < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(srv.stats.handshakesInFlight, 2);
    const c = await idle();
    await closed(c);
    assertEquals(srv.stats.refused.handshake_limit, 1);
    // The two silent ones are closed by the handshake timeout (slowloris).
    await Promise.all([closed(a), closed(b)]);
    assertEquals(srv.stats.refused.handshake_timeout, 2);
    assertEquals(srv.stats.handshakesInFlight, 0);
  } finally {
    await srv.close({ destroyConnections: true });
  }
});

Deno.test("createMtlsServer() refuses other trust domains and peers acceptPeer rejects", async () => {
  const ca = await testCa("skein.local");
  const fed = await testCa("partner.example");
  const server = await leaf(ca, "raft", { identity: { kind: "control", node: "cp-1" } });
  const bundle = trustBundlePem(ca) + trustBundlePem(fed);
  const { srv, port, seen } = await whoamiServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: bundle,
    trustDomain: "skein.local",
    acceptPeer: (p) => p.spiffeId.kind === "control",
  });
  const ask = async (c: { certPem: string; keyPem: string }) => {
    const s = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: c.certPem,
      key: c.keyPem,
      ca: bundle,
      expectSpiffe: (id) => id.kind === "control",
    });
    return await new Promise<string>((resolve) => {
      let got = "";
      s.on("data", (d: Uint8Array) => (got += new TextDecoder().decode(d)));
      s.on("error", () => {});
      s.on("close", () => resolve(got));
      s.write("GET / HTTP/1.1\r\nconnection: close\r\n\r\n");
    });
  };
  try {
    const peerCp = await leaf(ca, "x", { identity: { kind: "control", node: "cp-2" } });
    assertMatch(await ask(peerCp), /200 OK/);
    assertEquals(await ask(await leaf(ca, "payments")), "", "a proxy on the Raft port");
    const fedCp = await leaf(fed, "x", { identity: { kind: "control", node: "cp-2" } });
    assertEquals(await ask(fedCp), "", "a control node of another domain");
    assertEquals(seen, ["spiffe://skein.local/control/cp-2"]);
    assertEquals(srv.stats.refused.peer_refused, 1);
    assertEquals(srv.stats.refused.wrong_trust_domain, 1);
  } finally {
    await srv.close({ destroyConnections: true });
  }
});
