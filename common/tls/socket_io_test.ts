import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { tlsPair } from "../../tests/security/_pki.ts";
import { TlsSocketIo } from "./socket_io.ts";

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
