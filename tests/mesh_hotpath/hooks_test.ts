/** The forwarder hooks the proxy uses: extra request headers and the end-of-exchange callback. */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startBackend } from "../../bench/apps/backend.ts";
import { HttpForwarder, type RouteDecision } from "../../mesh/forward/mod.ts";
import { nullLogger } from "../../common/log.ts";
import { enc, forwarder, local, RawClient, rawUpstream } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("extraRequestHeaders are added to the forwarded request head", opts, async () => {
  const backend = await startBackend();
  const f = forwarder({
    endpoints: [local(backend.port)],
    extraRequestHeaders: "x-skein-destination: ledger\r\nx-extra: 1\r\n",
  });
  try {
    const h = await (await fetch(`http://127.0.0.1:${f.addr.port}/headers`)).json();
    assertEquals([h["x-skein-destination"], h["x-extra"]], ["ledger", "1"]);
  } finally {
    await f.close();
    await backend.close();
  }
});

Deno.test("onDone runs once, only after the whole response body has passed", opts, async () => {
  const release = Promise.withResolvers<void>();
  const up = rawUpstream(async (conn) => {
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello"));
    await release.promise;
    await conn.write(enc.encode("world"));
  });
  const done: number[] = [];
  const f = forwarder({ endpoints: [local(up.port)], onDone: (s) => done.push(s) });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    // Read the head and the first half: the exchange is not over yet.
    const buf = new Uint8Array(1024);
    let got = "";
    while (!got.endsWith("hello")) {
      const n = await c.conn.read(buf);
      if (n === null) throw new Error("closed early");
      got += new TextDecoder().decode(buf.subarray(0, n));
    }
    assertEquals(done, []);
    release.resolve();
    while (!got.endsWith("world")) {
      const n = await c.conn.read(buf);
      if (n === null) throw new Error("closed early");
      got += new TextDecoder().decode(buf.subarray(0, n));
    }
    while (done.length === 0) await new Promise((r) => setTimeout(r, 2));
    assertEquals(done, [200]);
  } finally {
    c.conn.close();
    await f.close();
    await up.close();
  }
});

Deno.test(
  "onDone reports the status of a proxy-generated error, and 0 when none was sent",
  opts,
  async () => {
    // Nothing listens on a freshly closed port: the connect fails and the proxy answers 502.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const dead = (l.addr as Deno.NetAddr).port;
    l.close();
    const done: number[] = [];
    const f = forwarder({ endpoints: [local(dead)], onDone: (s) => done.push(s) });
    // A client that leaves in the middle of a request body the proxy buffers: no response at all.
    const backend = await startBackend();
    const done2: number[] = [];
    const g = forwarder({ endpoints: [local(backend.port)], onDone: (s) => done2.push(s) });
    try {
      const r = await fetch(`http://127.0.0.1:${f.addr.port}/`);
      await r.body?.cancel();
      assertEquals(r.status, 502);
      assertEquals(done, [502]);
      const c = await RawClient.connect(g.addr.port);
      await c.send("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nhalf");
      await c.conn.closeWrite();
      while (done2.length === 0) await new Promise((r) => setTimeout(r, 2));
      assertEquals(done2, [0]);
      c.conn.close();
    } finally {
      await f.close();
      await g.close();
      await backend.close();
    }
  },
);

Deno.test("a balancer with no endpoint is asked once and the request gets 503", opts, async () => {
  const backend = await startBackend();
  const calls: string[] = [];
  let first = true;
  // Would offer an endpoint if asked a second time for attempt 0: it must not be.
  const router = {
    route(): RouteDecision {
      return {
        cluster: "ledger",
        timeoutMs: 0,
        perTryTimeoutMs: 0,
        pick: (attempt: number) => {
          calls.push(`pick(${attempt})`);
          const ep = first ? null : local(backend.port);
          first = false;
          return ep;
        },
        retry: () => null,
        onResult: () => {},
        onDone: (s: number) => calls.push(`done(${s})`),
      };
    },
  };
  const f = HttpForwarder.listen("127.0.0.1", 0, {
    node: "test-node",
    listener: { name: "test", protocol: "http" },
    router,
    logger: nullLogger,
  });
  try {
    const r = await fetch(`http://127.0.0.1:${f.addr.port}/`);
    await r.body?.cancel();
    assertEquals(r.status, 503);
    assertEquals(calls, ["pick(0)", "done(503)"]);
  } finally {
    await f.close();
    await backend.close();
  }
});

Deno.test(
  "an upgraded connection silent for the idle timeout is closed at both ends",
  opts,
  async () => {
    let now = 0;
    // Echoes after the 101 until the proxy closes its side.
    const up = rawUpstream(async (conn) => {
      await conn.write(
        enc.encode(
          "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
        ),
      );
      const buf = new Uint8Array(1024);
      while (true) {
        const n = await conn.read(buf);
        if (n === null) return;
        await conn.write(buf.subarray(0, n));
      }
    });
    const f = forwarder({ endpoints: [local(up.port)] }, {
      upgradedIdleMs: 10_000,
      idleClock: () => now,
    });
    const c = await RawClient.connect(f.addr.port);
    const buf = new Uint8Array(1024);
    const readText = async () => {
      const n = await c.conn.read(buf);
      return n === null ? null : new TextDecoder().decode(buf.subarray(0, n));
    };
    try {
      await c.send("GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n");
      let head = "";
      while (!head.includes("\r\n\r\n")) head += (await readText()) ?? "";
      assertEquals(head.startsWith("HTTP/1.1 101"), true);
      now = 9_000;
      f.sweepIdleUpgrades();
      await c.send("ping");
      assertEquals(await readText(), "ping", "traffic at 9 s keeps it open");
      now = 18_000;
      f.sweepIdleUpgrades();
      await c.send("pong");
      assertEquals(await readText(), "pong", "9 s after the last byte: still open");
      now = 28_000;
      f.sweepIdleUpgrades();
      // A guard so that a broken timeout fails here instead of hanging the suite.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const guard = new Promise<string>((r) => timer = setTimeout(() => r("still open"), 10_000));
      const got = await Promise.race([readText().then((t) => t ?? "closed"), guard]);
      clearTimeout(timer);
      assertEquals(got, "closed", "10 s of silence both ways closes the client's end");
    } finally {
      c.conn.close();
      await f.close();
      await up.close();
    }
  },
);
