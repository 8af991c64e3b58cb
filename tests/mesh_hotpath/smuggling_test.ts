/**
 * Regressions from a request-smuggling review of the forwarder: framing fields named as
 * Connection options, a 101 nobody asked for, and a body that stops making sense after the
 * upstream already answered. Each case drives exact bytes through a real forwarder.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { dec, enc, forwarder, local, RawClient, rawUpstream } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** An upstream that records each request (head and declared body) it parses, and answers 200. */
function recordingApp() {
  const seen: string[] = [];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        let text = "";
        const buf = new Uint8Array(16 * 1024);
        try {
          while (true) {
            const end = text.indexOf("\r\n\r\n");
            if (end < 0) {
              const n = await conn.read(buf);
              if (n === null) return;
              text += dec.decode(buf.subarray(0, n));
              continue;
            }
            const head = text.slice(0, end);
            const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
            // A chunked body is taken whole up to its last chunk (enough for these tests).
            while (chunked && !text.slice(end + 4).includes("0\r\n\r\n")) {
              const n = await conn.read(buf);
              if (n === null) return;
              text += dec.decode(buf.subarray(0, n));
            }
            const len = chunked
              ? text.indexOf("0\r\n\r\n", end + 4) + 5 - (end + 4)
              : Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
            while (text.length < end + 4 + len) {
              const n = await conn.read(buf);
              if (n === null) return;
              text += dec.decode(buf.subarray(0, n));
            }
            seen.push(`${head.split("\r\n")[0]} [${text.slice(end + 4, end + 4 + len)}]`);
            text = text.slice(end + 4 + len);
            await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
          }
        } catch {
          // The proxy closed it.
        } finally {
          conns.delete(conn);
        }
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    seen,
    close: async () => {
      listener.close();
      for (const c of conns) c.close();
      await loop.catch(() => {});
    },
  };
}

Deno.test(
  "Connection cannot strip Content-Length, Transfer-Encoding or Host from a request",
  opts,
  async () => {
    const app = recordingApp();
    const f = forwarder({ endpoints: [local(app.port)] });
    const c = await RawClient.connect(f.addr.port);
    try {
      const hidden = "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
      await c.send(
        "POST /public/x HTTP/1.1\r\nHost: a\r\nConnection: content-length, host\r\n" +
          `Content-Length: ${hidden.length}\r\n\r\n${hidden}`,
      );
      assertEquals((await c.read())?.status, 200);
      await c.send(
        "POST /public/y HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\n" +
          "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      );
      assertEquals((await c.read())?.status, 200);
      // The app parsed two requests, each with its body; /admin only ever as body bytes.
      assertEquals(app.seen.length, 2, app.seen.join("\n"));
      assertEquals(app.seen[0], `POST /public/x HTTP/1.1 [${hidden}]`);
      assertEquals(app.seen[1], "POST /public/y HTTP/1.1 [5\r\nhello\r\n0\r\n\r\n]");
    } finally {
      c.close();
      await f.close();
      await app.close();
    }
  },
);

Deno.test("Connection cannot strip Content-Length from a response either", opts, async () => {
  const up = rawUpstream(async (conn) => {
    await conn.write(
      enc.encode("HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello"),
    );
    await new Promise((r) => setTimeout(r, 50));
  });
  const f = forwarder({ endpoints: [local(up.port)] });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const r = await c.read();
    assertEquals([r?.status, r?.header("content-length"), r?.text], [200, "5", "hello"]);
  } finally {
    c.close();
    await f.close();
    await up.close();
  }
});

Deno.test(
  "a 101 to a request that asked for no upgrade is a 502, and its connection is not pooled",
  opts,
  async () => {
    let served = 0;
    const up = rawUpstream(async (conn, request) => {
      served++;
      if (request.startsWith("GET /first")) {
        await conn.write(enc.encode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"));
      } else {
        await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nmine"));
      }
      await new Promise((r) => setTimeout(r, 100));
    });
    const f = forwarder({ endpoints: [local(up.port)] });
    const a = await RawClient.connect(f.addr.port);
    const b = await RawClient.connect(f.addr.port);
    try {
      await a.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\n");
      const r = await a.read();
      assertEquals([r?.status, r?.header("x-skein-error")], [502, "bad_upstream_response"]);
      await b.send("GET /second HTTP/1.1\r\nHost: a\r\n\r\n");
      const rb = await b.read();
      assertEquals([rb?.status, rb?.text], [200, "mine"]);
      assertEquals(up.connections(), 2, "the switched connection was not reused");
      assertEquals(served, 2);
    } finally {
      a.close();
      b.close();
      await f.close();
      await up.close();
    }
  },
);
