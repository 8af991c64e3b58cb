import { assert, assertEquals } from "../../tests/assert.ts";
import tls from "node:tls";
import { tlsPair } from "../../tests/security/_pki.ts";
import { RawTlsHandle } from "./raw_handle.ts";

Deno.test("RawTlsHandle finds the native handle of a node:tls socket in this Deno", async () => {
  const { srv, client, server } = await tlsPair();
  try {
    // If a Deno upgrade changes these internals, this fails: the mux would then silently run
    // on the slower stream path (still correct, see the fallback test below).
    assert(RawTlsHandle.of(server) !== null, "server socket");
    assert(RawTlsHandle.of(client) !== null, "client socket");
    // Anything without the handle's shape gets the ordinary socket API.
    assertEquals(RawTlsHandle.of({} as tls.TLSSocket), null);
    assertEquals(
      RawTlsHandle.of({ _handle: { readStart() {} } } as unknown as tls.TLSSocket),
      null,
    );
  } finally {
    client.destroy();
    server.destroy();
    srv.close();
  }
});

Deno.test("RawTlsHandle delivers what was buffered before it, then every chunk, then EOF", async () => {
  const { srv, client, server } = await tlsPair();
  try {
    // Bytes that reach the socket before the handle is taken over must not be lost.
    server.pause();
    client.write("early ");
    await new Promise((r) => setTimeout(r, 50));
    const raw = RawTlsHandle.of(server)!;
    let got = "";
    const ended = Promise.withResolvers<Error | null>();
    raw.start((c) => (got += new TextDecoder().decode(c)), (e) => ended.resolve(e));
    client.write("late");
    for (let i = 0; i < 2000 && got !== "early late"; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assertEquals(got, "early late");
    client.end();
    assertEquals(await ended.promise, null, "the peer's end is a clean EOF");
  } finally {
    client.destroy();
    server.destroy();
    srv.close();
  }
});

Deno.test("RawTlsHandle writes arrive in order, and a large backlog asks the writer to wait", async () => {
  const { srv, client, server } = await tlsPair();
  try {
    const raw = RawTlsHandle.of(server)!;
    raw.start(() => {}, () => {});
    let received = 0;
    const total = 64 * 64 * 1024;
    const done = Promise.withResolvers<void>();
    let order = true;
    let next = 0;
    client.on("data", (d: Uint8Array) => {
      for (const b of d) {
        if (b !== (next & 0xff)) order = false;
        next++;
      }
      received += d.length;
      if (received >= total) done.resolve();
    });
    let waited = 0;
    let sent = 0;
    for (let i = 0; i < 64; i++) {
      const chunk = new Uint8Array(64 * 1024);
      for (let j = 0; j < chunk.length; j++) chunk[j] = (sent + j) & 0xff;
      sent += chunk.length;
      const w = raw.write(chunk);
      if (w !== undefined) {
        waited++;
        await w;
      }
    }
    // Bounded, so lost bytes fail the test instead of hanging it.
    const timer = setTimeout(() => done.resolve(), 10_000);
    await done.promise;
    clearTimeout(timer);
    assertEquals(received, total, "every byte arrived");
    assert(order, "bytes arrive in the order written");
    assert(waited > 0, "4 MiB at once is over the high-water mark at least once");
  } finally {
    client.destroy();
    server.destroy();
    srv.close();
  }
});

Deno.test("a broken connection ends a RawTlsHandle reader with an error or EOF, not silence", async () => {
  const { srv, client, server } = await tlsPair();
  try {
    const raw = RawTlsHandle.of(server)!;
    const ended = Promise.withResolvers<Error | null>();
    let closed = false;
    server.on("close", () => (closed = true));
    raw.start(() => {}, (e) => ended.resolve(e));
    client.destroy(); // no close_notify: the server sees the TCP connection end
    const r = await Promise.race([
      ended.promise.then(() => "ended"),
      new Promise((r) => setTimeout(() => r(closed ? "closed" : "timeout"), 10_000)),
    ]);
    assert(r === "ended" || r === "closed", `reader was told (${r})`);
  } finally {
    server.destroy();
    srv.close();
  }
});

Deno.test("RawTlsHandle reads a large patterned stream intact, chunk after chunk", async () => {
  const { srv, client, server } = await tlsPair();
  try {
    const raw = RawTlsHandle.of(server)!;
    const total = 2 * 1024 * 1024;
    let seen = 0;
    let intact = true;
    const done = Promise.withResolvers<void>();
    // Each chunk is checked during its call, as a mux session parses it (it may be reused).
    raw.start((c) => {
      for (let i = 0; i < c.length; i++) if (c[i] !== (((seen + i) * 7) & 0xff)) intact = false;
      seen += c.length;
      if (seen >= total) done.resolve();
    }, () => done.resolve());
    let k = 0;
    while (k < total) {
      const b = new Uint8Array(Math.min(20_000, total - k));
      for (let j = 0; j < b.length; j++) b[j] = ((k + j) * 7) & 0xff;
      k += b.length;
      if (!client.write(b)) await new Promise((r) => client.once("drain", r));
    }
    const timer = setTimeout(() => done.resolve(), 10_000);
    await done.promise;
    clearTimeout(timer);
    assertEquals(seen, total);
    assert(intact, "every byte in order");
  } finally {
    client.destroy();
    server.destroy();
    srv.close();
  }
});
