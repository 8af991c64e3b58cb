/**
 * The mTLS server's limits that do not need a whole proxy: handshakes per client address, and
 * connections that end when the peer's certificate expires.
 */
import { assert, assertEquals } from "../assert.ts";
import { trustBundlePem } from "../../control/ca/mod.ts";
import { mtlsConnect } from "../../common/tls/mod.ts";
import { X509Certificate } from "node:crypto";
import { leaf, testCa, whoamiServer } from "./_pki.ts";

Deno.test("silent connections from one address cannot take every handshake slot", async () => {
  const ca = await testCa();
  const s = await leaf(ca, "ledger");
  const { srv, port } = await whoamiServer({
    cert: s.certPem,
    key: s.keyPem,
    ca: trustBundlePem(ca),
    maxHandshakesPerAddress: 2,
    handshakeTimeoutMs: 30_000,
  });
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) held.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    // Let the server see both before the third arrives.
    for (let i = 0; i < 1000 && srv.stats.handshakesInFlight < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(srv.stats.handshakesInFlight, 2);
    const third = await Deno.connect({ hostname: "127.0.0.1", port });
    held.push(third);
    // Refused: closed at once, before any TLS.
    const n = await third.read(new Uint8Array(1)).catch(() => null);
    assertEquals(n, null);
    assertEquals(srv.stats.refused.address_limit, 1);
  } finally {
    for (const c of held) {
      try {
        c.close();
      } catch {
        // Closed already.
      }
    }
    srv.server.close();
  }
});

Deno.test("an mTLS connection ends when the client's certificate expires", async () => {
  const ca = await testCa();
  const s = await leaf(ca, "ledger");
  // Issued 50 s ago for the shortest lifetime the CA allows: about 10 s left, so signing, the
  // server start and the handshake fit even on a stalled machine.
  const c = await leaf(ca, "payments", { now: Date.now() - 50_000, ttlMs: 60_000 });
  const { srv, port } = await whoamiServer({
    cert: s.certPem,
    key: s.keyPem,
    ca: trustBundlePem(ca),
  });
  try {
    const socket = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: c.certPem,
      key: c.keyPem,
      ca: trustBundlePem(ca),
      expectSpiffe: "spiffe://skein.local/svc/ledger",
    });
    const closed = new Promise<number>((r) => socket.once("close", () => r(Date.now())));
    socket.on("error", () => {});
    const answer = new Promise<string>((r) => socket.once("data", (d) => r(String(d))));
    socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    assert((await answer).startsWith("HTTP/1.1 200"), "works while the certificate is valid");
    // Open, idle, and nobody closes it: the server does, at the certificate's notAfter.
    const at = await closed;
    const notAfter = new X509Certificate(c.certPem).validToDate.getTime();
    assert(at >= notAfter - 1_000, `closed ${notAfter - at} ms before the certificate expired`);
  } finally {
    srv.server.close();
  }
});
