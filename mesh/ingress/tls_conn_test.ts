import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import type tls from "node:tls";
import { tlsPair } from "../../tests/security/_pki.ts";
import { IngressTlsConn } from "./tls_conn.ts";

/** Collects what `client` receives until it sees the connection end. */
function _collect(client: tls.TLSSocket): { text: () => string; ended: Promise<void> } {
  let got = "";
  const ended = Promise.withResolvers<void>();
  client.on("data", (c: Uint8Array) => (got += new TextDecoder().decode(c)));
  client.on("end", () => ended.resolve());
  client.on("close", () => ended.resolve());
  return { text: () => got, ended: ended.promise };
}

async function _until(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert(ok(), what);
}

Deno.test("IngressTlsConn reads every chunk in order, also when several wait unread", async () => {
  const { srv, client, server } = await tlsPair();
  const conn = IngressTlsConn.of(server)!;
  try {
    assert(conn !== null, "this Deno has the native handle");
    // Separate TLS records that arrive before any read: each must keep its own bytes.
    const parts = ["GET / HTTP/1.1\r\n", "host: a\r\n", "\r\n", "x".repeat(40_000)];
    for (const p of parts) client.write(p);
    const want = parts.join("");
    let got = "";
    await new Promise((r) => setTimeout(r, 100));
    const buf = new Uint8Array(1000);
    while (got.length < want.length) {
      const n = await conn.read(buf);
      assert(n !== null && n > 0);
      got += new TextDecoder().decode(buf.subarray(0, n));
    }
    assertEquals(got, want);
    client.end();
    assertEquals(await conn.read(buf), null, "the client's end is the end of stream");
  } finally {
    conn.close();
    client.destroy();
    srv.close();
  }
});

Deno.test("IngressTlsConn.tryWrite keeps its own copy, and close() still delivers it", async () => {
  const { srv, client, server } = await tlsPair();
  const got = _collect(client);
  const conn = IngressTlsConn.of(server)!;
  try {
    const head = new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n");
    const body = new TextEncoder().encode("ok");
    assert(conn.tryWrite(head), "a short write is taken at once");
    // The first write is still in flight: the handle holds this one back until it completes.
    assert(conn.tryWrite(body), "so is a second one");
    // The forwarder reuses its buffers right after: the client must still get the originals.
    head.fill(0x21);
    body.fill(0x21);
    // Closing at once (a `connection: close` answer) must not cut what was handed over.
    conn.close();
    await got.ended;
    assertEquals(got.text(), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    const out = new Uint8Array(4);
    assertEquals(conn.tryWrite(out), false, "nothing is taken after close");
    await assertRejects(() => conn.write(out), Deno.errors.BrokenPipe);
    await assertRejects(() => conn.read(new Uint8Array(8)), Deno.errors.BadResource);
  } finally {
    client.destroy();
    srv.close();
  }
});

Deno.test("IngressTlsConn.tryWrite declines past the high-water mark; write() waits instead", async () => {
  const { srv, client, server } = await tlsPair();
  const conn = IngressTlsConn.of(server)!;
  let received = 0;
  client.on("data", (c: Uint8Array) => (received += c.length));
  try {
    const big = new Uint8Array(server.writableHighWaterMark + 1);
    assertEquals(conn.tryWrite(big), false, "over the mark in one go: the caller must await");
    assertEquals(await conn.write(big), big.length);
    const chunk = new Uint8Array(64 * 1024);
    let total = big.length;
    for (let i = 0; i < 32; i++) {
      assertEquals(await conn.write(chunk), chunk.length);
      total += chunk.length;
    }
    await _until(() => received === total, `client got ${received} of ${total} bytes`);
  } finally {
    conn.close();
    client.destroy();
    srv.close();
  }
});

Deno.test("IngressTlsConn fails the read once a client sends past the unread cap", async () => {
  const { srv, client, server } = await tlsPair();
  const conn = IngressTlsConn.of(server, 64 * 1024)!;
  try {
    client.write(new Uint8Array(200 * 1024));
    await assertRejects(async () => {
      const buf = new Uint8Array(16);
      // Give the flood time to arrive before the first read.
      await new Promise((r) => setTimeout(r, 200));
      while (true) if (await conn.read(buf) === null) return;
    }, Deno.errors.ConnectionReset);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the cap already.
    }
    client.destroy();
    srv.close();
  }
});

Deno.test("IngressTlsConn.closeWrite sends what was handed over, then the end", async () => {
  const { srv, client, server } = await tlsPair();
  const got = _collect(client);
  const conn = IngressTlsConn.of(server)!;
  try {
    assert(conn.tryWrite(new TextEncoder().encode("last words")));
    await conn.closeWrite();
    await got.ended;
    assertEquals(got.text(), "last words");
  } finally {
    conn.close();
    client.destroy();
    srv.close();
  }
});
