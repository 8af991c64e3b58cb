import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type Backend, startBackend } from "../../bench/apps/backend.ts";
import { ConnectionPool, type HttpForwarder, type Outcome } from "../../mesh/forward/mod.ts";
import { dec, enc, forwarder, local, RawClient, rawUpstream } from "./helpers.ts";

// Pool sweepers and accept loops outlive single assertions; every test closes what it opens.
const opts = { sanitizeOps: false, sanitizeResources: false };

/** backend <- inbound forwarder <- outbound forwarder, like app -> proxy -> proxy -> app. */
async function twoHops(): Promise<{
  backend: Backend;
  inbound: HttpForwarder;
  outbound: HttpForwarder;
  close: () => Promise<void>;
}> {
  const backend = await startBackend();
  const inbound = forwarder({ endpoints: [local(backend.port)] }, { node: "inbound" });
  const outbound = forwarder({ endpoints: [local(inbound.addr.port)] }, { node: "outbound" });
  return {
    backend,
    inbound,
    outbound,
    close: async () => {
      await outbound.close();
      await inbound.close();
      await backend.close();
    },
  };
}

Deno.test("GET and POST pass through one and two proxy hops", opts, async () => {
  const m = await twoHops();
  try {
    for (const port of [m.inbound.addr.port, m.outbound.addr.port]) {
      const r = await fetch(`http://127.0.0.1:${port}/`);
      assertEquals([r.status, await r.text()], [200, "ok"]);
      const p = await fetch(`http://127.0.0.1:${port}/echo`, {
        method: "POST",
        body: "hello mesh",
      });
      assertEquals([p.status, await p.text()], [200, "hello mesh"]);
    }
    const h = await (await fetch(`http://127.0.0.1:${m.outbound.addr.port}/headers`)).json();
    // Each hop appends the address it saw.
    assertEquals(h["x-forwarded-for"], "127.0.0.1, 127.0.0.1");
  } finally {
    await m.close();
  }
});

Deno.test(
  "keep-alive: sequential requests reuse one upstream connection per hop",
  opts,
  async () => {
    const m = await twoHops();
    const c = await RawClient.connect(m.outbound.addr.port);
    try {
      for (let i = 0; i < 20; i++) {
        await c.send("GET / HTTP/1.1\r\nHost: app\r\n\r\n");
        const r = await c.read();
        assert(r !== null);
        assertEquals([r.status, r.text], [200, "ok"]);
      }
      // Pipelined: two requests in one write come back in order.
      await c.send(
        "GET / HTTP/1.1\r\nHost: app\r\n\r\nPOST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\n\r\nabc",
      );
      assertEquals((await c.read())?.text, "ok");
      assertEquals((await c.read("POST"))?.text, "abc");
      assertEquals(m.outbound.pool.stats().opened, 1);
      assertEquals(m.inbound.pool.stats().opened, 1);
      assertEquals(m.outbound.pool.stats().reused, 21);
      assertEquals(m.backend.connections(), 1);
    } finally {
      c.close();
      await m.close();
    }
  },
);

Deno.test(
  "a pooled connection closed by the upstream is evicted and not reused",
  opts,
  async () => {
    let served = 0;
    const up = rawUpstream(async (conn) => {
      served++;
      await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"));
      // Then close: the idle pooled connection dies.
    });
    const f = forwarder({ endpoints: [local(up.port)] });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`http://127.0.0.1:${f.addr.port}/`);
        assertEquals(await r.text(), "hi");
        // Wait until the pool noticed the close (no timing: poll the counter).
        while (f.pool.stats().evictedDead < i + 1) await new Promise((r) => setTimeout(r, 5));
      }
      assertEquals(served, 3);
      assertEquals(f.pool.stats().reused, 0);
    } finally {
      await f.close();
      await up.close();
    }
  },
);

Deno.test("Expect: 100-continue is relayed before the body is sent", opts, async () => {
  const m = await twoHops();
  const c = await RawClient.connect(m.outbound.addr.port);
  try {
    await c.send(
      "POST /echo HTTP/1.1\r\nHost: app\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    const interim = await c.read("POST");
    assert(interim !== null);
    assertEquals(interim.status, 100);
    await c.send("hello");
    const r = await c.read("POST");
    assert(r !== null);
    assertEquals([r.status, r.text], [200, "hello"]);
  } finally {
    c.close();
    await m.close();
  }
});

Deno.test("WebSocket echo works through two proxies", opts, async () => {
  const m = await twoHops();
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${m.outbound.addr.port}/ws`);
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => ws.send("ping-1");
      ws.onerror = () => reject(new Error("websocket error"));
      ws.onmessage = (e) => {
        got.push(String(e.data));
        if (got.length === 1) ws.send("x".repeat(100_000));
        else resolve();
      };
    });
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
    assertEquals(got[0], "ping-1");
    assertEquals(got[1]!.length, 100_000);
  } finally {
    await m.close();
  }
});

Deno.test(
  "malformed requests get 400/431/501 and do not disturb a concurrent connection",
  opts,
  async () => {
    const m = await twoHops();
    const good = await RawClient.connect(m.outbound.addr.port);
    try {
      await good.send("GET / HTTP/1.1\r\nHost: app\r\n\r\n");
      assertEquals((await good.read())?.status, 200);
      const cases: Array<[string, number]> = [
        ["GET / HTTP/1.1\r\nHost: app\r\nBad Header: x\r\n\r\n", 400],
        [
          "POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
          400,
        ],
        ["GET / HTTP/1.1\r\nHost: app\r\nX: " + "a".repeat(70_000) + "\r\n\r\n", 431],
        ["GET / HTTP/1.1\r\nHost: app\r\nX: 1\r\n folded\r\n\r\n", 400],
        ["POST / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: gzip\r\n\r\n", 501],
        ["GET / HTTP/1.1\nHost: app\n\n", 400],
      ];
      for (const [req, status] of cases) {
        const bad = await RawClient.connect(m.outbound.addr.port);
        try {
          await bad.send(req).catch(() => {});
          const r = await bad.read();
          assert(r !== null, JSON.stringify(req.slice(0, 60)));
          assertEquals(r.status, status, JSON.stringify(req.slice(0, 60)));
          assertEquals(r.header("x-skein-proxy"), "outbound");
          assertEquals(r.header("x-skein-error"), "bad_request");
          assert(await bad.closedByPeer());
        } finally {
          bad.close();
        }
        await good.send("GET / HTTP/1.1\r\nHost: app\r\n\r\n");
        assertEquals((await good.read())?.text, "ok");
      }
      // Bad chunked framing inside a body is caught too.
      const bad = await RawClient.connect(m.outbound.addr.port);
      await bad.send(
        "POST /sink HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      );
      const r = await bad.read("POST");
      bad.close();
      assertEquals(r?.status, 400);
    } finally {
      good.close();
      await m.close();
    }
  },
);

Deno.test("no endpoint answers 503 with the cause", opts, async () => {
  const f = forwarder({ endpoints: [], cluster: "ledger" }, { node: "vm-1" });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("GET / HTTP/1.1\r\nHost: ledger\r\n\r\n");
    const r = await c.read();
    assert(r !== null);
    assertEquals([r.status, r.header("x-skein-error"), r.header("x-skein-proxy")], [
      503,
      "no_endpoint",
      "vm-1",
    ]);
    assert(r.text.includes("ledger"));
    // A bodiless request leaves the connection usable.
    await c.send("GET / HTTP/1.1\r\nHost: ledger\r\n\r\n");
    assertEquals((await c.read())?.status, 503);
  } finally {
    c.close();
    await f.close();
  }
});

Deno.test("an upstream that dies before responding gives 502 upstream_reset", opts, async () => {
  const up = rawUpstream(async (conn) => {
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\nContent-"));
  });
  const f = forwarder({ endpoints: [local(up.port)] });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const r = await c.read();
    assertEquals([r?.status, r?.header("x-skein-error")], [502, "upstream_reset"]);
  } finally {
    c.close();
    await f.close();
    await up.close();
  }
});

Deno.test("an upstream that dies mid-body closes the client connection", opts, async () => {
  const up = rawUpstream(async (conn) => {
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"));
  });
  const f = forwarder({ endpoints: [local(up.port)] });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    // The head was already relayed, so the only honest signal left is a truncated close.
    assertEquals(await c.read(), null);
  } finally {
    c.close();
    await f.close();
    await up.close();
  }
});

Deno.test(
  "the per-try timeout starts once the connection is open, not before the connect",
  opts,
  async () => {
    const backend = await startBackend();
    // Every connect takes 600 ms (a cold mux session's handshake, say), more than the 400 ms
    // budget; the answer 30 ms. The margins are wide because a busy CI machine stalls.
    const pool = new ConnectionPool({
      connect: async (ep) => {
        await new Promise((r) => setTimeout(r, 600));
        return await Deno.connect({ hostname: ep.hostname, port: ep.port });
      },
    });
    const f = forwarder({ endpoints: [local(backend.port)], perTryTimeoutMs: 400 }, { pool });
    try {
      const r = await fetch(`http://127.0.0.1:${f.addr.port}/slow?ms=30`);
      assertEquals([r.status, r.headers.get("x-skein-error"), await r.text()], [200, null, "slow"]);
      // A try that really outlives its budget still times out (the connection is pooled now).
      const t = await fetch(`http://127.0.0.1:${f.addr.port}/slow?ms=1500`);
      await t.body?.cancel();
      assertEquals([t.status, t.headers.get("x-skein-error")], [504, "upstream_timeout"]);
    } finally {
      await f.close();
      pool.close();
      await backend.close();
    }
  },
);

Deno.test(
  "a try that times out is retried, and the connection's next requests get a fresh budget",
  opts,
  async () => {
    const backend = await startBackend();
    const outcomes: Outcome[] = [];
    const f = forwarder({
      endpoints: [local(backend.port)],
      perTryTimeoutMs: 600,
      retries: 1,
      onResult: (_ep, o) => outcomes.push(o),
    });
    const c = await RawClient.connect(f.addr.port);
    try {
      await c.send("GET /slow?ms=1500 HTTP/1.1\r\nHost: a\r\n\r\n");
      const first = await c.read();
      assertEquals([first?.status, first?.header("x-skein-error")], [504, "upstream_timeout"]);
      assertEquals(outcomes.map((o) => o.kind), ["timeout", "timeout"]);
      // The session's timer is re-armed per try on the same keep-alive connection: a try that
      // outlasts an old deadline but not its own budget must not be cut short (three tries of
      // 250 ms outlast one 600 ms budget; each leaves a wide margin for a busy machine).
      for (let i = 0; i < 3; i++) {
        await c.send("GET /slow?ms=250 HTTP/1.1\r\nHost: a\r\n\r\n");
        const r = await c.read();
        assertEquals([r?.status, r?.header("x-skein-error"), r?.text], [200, null, "slow"]);
      }
      assertEquals(outcomes.map((o) => o.kind).slice(2), ["response", "response", "response"]);
      // And the re-armed timer still fires.
      await c.send("GET /slow?ms=1500 HTTP/1.1\r\nHost: a\r\n\r\n");
      const last = await c.read();
      assertEquals([last?.status, last?.header("x-skein-error")], [504, "upstream_timeout"]);
      assertEquals(f.stats().retries, 2);
    } finally {
      c.close();
      await f.close();
      await backend.close();
    }
  },
);

Deno.test("a silent upstream gives 504 upstream_timeout", opts, async () => {
  let release!: () => void;
  const hold = new Promise<void>((r) => (release = r));
  const up = rawUpstream(() => hold);
  const outcomes: Outcome[] = [];
  const f = forwarder({
    endpoints: [local(up.port)],
    timeoutMs: 200,
    onResult: (_ep, o) => outcomes.push(o),
  });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const r = await c.read();
    assertEquals([r?.status, r?.header("x-skein-error")], [504, "upstream_timeout"]);
    assertEquals(outcomes, [{ kind: "timeout" }]);
  } finally {
    release();
    c.close();
    await f.close();
    await up.close();
  }
});

Deno.test(
  "a refused connect gives 502, and with a retry the next endpoint serves",
  opts,
  async () => {
    const backend = await startBackend();
    // A port with nothing listening: bind, note the port, close.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const dead = local((l.addr as Deno.NetAddr).port);
    l.close();
    const outcomes: string[] = [];
    const noRetry = forwarder({ endpoints: [dead] });
    const withRetry = forwarder({
      endpoints: [dead, local(backend.port)],
      retries: 1,
      onResult: (ep, o) => outcomes.push(`${ep.key === dead.key ? "dead" : "live"}:${o.kind}`),
    });
    try {
      const r1 = await fetch(`http://127.0.0.1:${noRetry.addr.port}/`);
      assertEquals([r1.status, r1.headers.get("x-skein-error")], [502, "upstream_connect_failure"]);
      await r1.body?.cancel();
      const r2 = await fetch(`http://127.0.0.1:${withRetry.addr.port}/echo`, {
        method: "POST",
        body: "replayed",
      });
      assertEquals([r2.status, await r2.text()], [200, "replayed"]);
      assertEquals(outcomes, ["dead:connect_failure", "live:response"]);
      assertEquals(withRetry.stats().retries, 1);
    } finally {
      await noRetry.close();
      await withRetry.close();
      await backend.close();
    }
  },
);

Deno.test("drain stops accepting and lets the in-flight request finish", opts, async () => {
  let respond!: () => void;
  const go = new Promise<void>((r) => (respond = r));
  let arrived!: () => void;
  const arrivedP = new Promise<void>((r) => (arrived = r));
  const up = rawUpstream(async (conn) => {
    arrived();
    await go;
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone"));
  });
  const f = forwarder({ endpoints: [local(up.port)] });
  const port = f.addr.port;
  const idle = await RawClient.connect(port);
  const busy = await RawClient.connect(port);
  try {
    await busy.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    await arrivedP;
    const drained = f.drain(10_000);
    // The idle keep-alive connection is closed at once; new connections are refused.
    assert(await idle.closedByPeer());
    let refused = false;
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    } catch {
      refused = true;
    }
    assert(refused);
    respond();
    const r = await busy.read();
    assertEquals([r?.status, r?.text, r?.header("connection")], [200, "done", "close"]);
    await drained;
    assertEquals(f.stats().active, 0);
  } finally {
    idle.close();
    busy.close();
    await up.close();
  }
});

Deno.test("HEAD and 204 responses carry no body and keep the connection", opts, async () => {
  const up = rawUpstream(async (conn) => {
    // Answers two requests on one connection: HEAD with a length but no body, then a 204.
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n"));
    const buf = new Uint8Array(4096);
    await conn.read(buf);
    await conn.write(enc.encode("HTTP/1.1 204 No Content\r\n\r\n"));
    await conn.read(buf);
  });
  const f = forwarder({ endpoints: [local(up.port)] });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    const h = await c.read("HEAD");
    assertEquals([h?.status, h?.header("content-length"), h?.body.length], [200, "50", 0]);
    await c.send("DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assertEquals((await c.read())?.status, 204);
    assertEquals(f.pool.stats().opened, 1);
  } finally {
    c.close();
    await f.close();
    await up.close();
  }
});

Deno.test("a response without length is streamed until the upstream closes", opts, async () => {
  const up = rawUpstream(async (conn) => {
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\n\r\npart one, "));
    await conn.write(enc.encode("part two"));
  });
  const f = forwarder({ endpoints: [local(up.port)] });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const r = await c.read();
    assertEquals([r?.status, r?.text, r?.header("connection")], [
      200,
      "part one, part two",
      "close",
    ]);
  } finally {
    c.close();
    await f.close();
    await up.close();
  }
  void dec;
});

Deno.test(
  "a 5xx from one endpoint is retried on another for idempotent requests only",
  opts,
  async () => {
    const failing = rawUpstream(async (conn) => {
      await conn.write(
        enc.encode("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy"),
      );
    });
    const healthy = rawUpstream(async (conn) => {
      await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    });
    const f = forwarder({ endpoints: [local(failing.port), local(healthy.port)], retries: 1 });
    try {
      const get = await fetch(`http://127.0.0.1:${f.addr.port}/`);
      assertEquals([get.status, await get.text()], [200, "ok"]);
      // POST is not idempotent: the upstream's own 503 is relayed as is.
      const post = await fetch(`http://127.0.0.1:${f.addr.port}/`, { method: "POST", body: "x" });
      assertEquals([post.status, await post.text(), post.headers.get("x-skein-proxy")], [
        503,
        "busy",
        null,
      ]);
    } finally {
      await f.close();
      await failing.close();
      await healthy.close();
    }
  },
);

Deno.test("an HTTP/1.0 client is answered and the connection closed", opts, async () => {
  const backend = await startBackend();
  const f = forwarder({ endpoints: [local(backend.port)] });
  const c = await RawClient.connect(f.addr.port);
  try {
    await c.send("GET / HTTP/1.0\r\n\r\n");
    const r = await c.read();
    assertEquals([r?.status, r?.text, r?.header("connection")], [200, "ok", "close"]);
    assert(await c.closedByPeer());
  } finally {
    c.close();
    await f.close();
    await backend.close();
  }
});

Deno.test("response heads larger than the upstream read buffer are relayed", opts, async () => {
  const big = "v".repeat(30_000);
  const up = rawUpstream(async (conn) => {
    await conn.write(enc.encode(`HTTP/1.1 200 OK\r\nx-big: ${big}\r\ncontent-length: 2\r\n\r\nok`));
  });
  const f = forwarder({ endpoints: [local(up.port)] });
  try {
    const r = await fetch(`http://127.0.0.1:${f.addr.port}/`);
    assertEquals([r.status, r.headers.get("x-big")?.length, await r.text()], [200, 30_000, "ok"]);
  } finally {
    await f.close();
    await up.close();
  }
});

Deno.test("concurrent keep-alive clients never see each other's responses", opts, async () => {
  const m = await twoHops();
  try {
    const clients = await Promise.all(
      Array.from({ length: 16 }, () => RawClient.connect(m.outbound.addr.port)),
    );
    await Promise.all(clients.map(async (c, ci) => {
      for (let i = 0; i < 25; i++) {
        const body = `client ${ci} request ${i} ${"z".repeat((ci * 997 + i * 131) % 3000)}`;
        await c.send(
          `POST /echo HTTP/1.1\r\nHost: app\r\nContent-Length: ${
            enc.encode(body).length
          }\r\n\r\n${body}`,
        );
        const r = await c.read("POST");
        assertEquals(r?.text, body);
      }
      c.close();
    }));
    // Upstream connections are bounded by the client concurrency, not the request count.
    assert(m.outbound.pool.stats().opened <= 16);
    assertEquals(m.outbound.stats().requests, 16 * 25);
  } finally {
    await m.close();
  }
});

Deno.test(
  "a replayable POST body larger than the client buffer keeps its head intact",
  opts,
  async () => {
    // Bodies up to the retry limit (64 KiB) are buffered for a replay; one that does not fit
    // the 16 KiB client buffer used to be compacted over the parsed head it belongs to.
    const m = await twoHops();
    try {
      for (const size of [20_000, 60_000]) {
        const body = "z".repeat(size);
        const r = await fetch(`http://127.0.0.1:${m.outbound.addr.port}/echo`, {
          method: "POST",
          body,
          headers: { "x-check": "intact" },
        });
        const t = await r.text();
        assertEquals([r.status, t.length, t === body], [200, size, true]);
      }
    } finally {
      await m.close();
    }
  },
);
