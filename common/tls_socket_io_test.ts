import { assert, assertEquals, assertRejects } from "../tests/assert.ts";
import tls from "node:tls";
import { leaf, testCa } from "../tests/security/_pki.ts";
import { trustBundlePem } from "../control/ca/mod.ts";
import { TlsSocketIo } from "./tls_socket_io.ts";

/** A TLS server and a connected client; resolves with both sockets. */
async function tlsPair() {
  const ca = await testCa();
  const s = await leaf(ca, "ledger");
  const caPem = trustBundlePem(ca);
  const accepted = Promise.withResolvers<tls.TLSSocket>();
  const srv = tls.createServer(
    { key: s.keyPem, cert: s.certPem },
    (sock) => accepted.resolve(sock),
  );
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  const client = tls.connect({
    host: "127.0.0.1",
    port,
    ca: caPem,
    checkServerIdentity: () => undefined,
  });
  client.on("error", () => {});
  await new Promise((r) => client.once("secureConnect", r));
  const server = await accepted.promise;
  server.on("error", () => {});
  return { srv, client, server };
}

Deno.test("TlsSocketIo closes a connection whose reader falls too far behind (node:tls does not push back)", async () => {
  const { srv, client, server } = await tlsPair();
  const io = new TlsSocketIo(server, 256 * 1024);
  try {
    // Bytes within the cap wait for the reader, in order.
    client.write(new Uint8Array(100_000).fill(7));
    const buf = new Uint8Array(64 * 1024);
    let got = 0;
    while (got < 100_000) {
      const n = await io.read(buf);
      assert(n !== null);
      assert(buf.subarray(0, n).every((b) => b === 7));
      got += n;
    }
    // A peer that keeps sending to a reader that takes nothing: cut once over the cap.
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < 16; i++) client.write(chunk);
    await new Promise<void>((r) => server.once("close", () => r()));
    const e = await assertRejects(() => io.read(buf), Error);
    assert(/has not taken/.test(e.message), e.message);
  } finally {
    io.close();
    client.destroy();
    srv.close();
  }
});

Deno.test("TlsSocketIo reads to the end and reports it", async () => {
  const { srv, client, server } = await tlsPair();
  const io = new TlsSocketIo(server);
  try {
    client.end(new TextEncoder().encode("hello"));
    const buf = new Uint8Array(16);
    let text = "";
    while (true) {
      const n = await io.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    assertEquals(text, "hello");
  } finally {
    io.close();
    client.destroy();
    srv.close();
  }
});
