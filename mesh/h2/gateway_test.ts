import http2 from "node:http2";
import { assert, assertEquals } from "../../tests/assert.ts";
import { CoarseTimers, type Endpoint, type RouteDecision } from "../forward/mod.ts";
import { DEFAULT_HEAD_LIMITS } from "../http1/mod.ts";
import type { Logger } from "../../common/log.ts";
import { H2Gateway } from "./gateway.ts";

const _log: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return _log;
  },
} as unknown as Logger;

/** An h2c app answering `ok <path>` with a trailer; returns its port and a closer. */
async function app(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer();
  server.on("stream", (s: http2.ServerHttp2Stream, h) => {
    s.on("error", () => {});
    if (h[":path"] === "/500-empty") {
      // A head, then the end of the stream with no body byte (an empty DATA frame).
      s.respond({ ":status": 500 });
      s.end();
      return;
    }
    if (h[":path"] === "/500-trailers") {
      // A head, then trailers ending the stream, with no body between.
      s.respond({ ":status": 500 }, { waitForTrailers: true });
      s.on("wantTrailers", () => s.sendTrailers({ "x-t": "2" }));
      s.end();
      return;
    }
    if (h[":path"] === "/echo-trailers") {
      // Answers, once the request is over, with the request's trailer as a response trailer.
      let got = "none";
      s.on("trailers", (t) => got = String(t["x-req-t"]));
      s.on("data", () => {});
      s.on("end", () => {
        s.respond({ ":status": 200 }, { waitForTrailers: true });
        s.on("wantTrailers", () => s.sendTrailers({ "x-got": got }));
        s.end("done");
      });
      return;
    }
    s.respond({ ":status": 200 }, { waitForTrailers: true });
    s.on("wantTrailers", () => s.sendTrailers({ "x-t": "1" }));
    s.end(`ok ${h[":path"]}`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A gateway behind a listener on port 0, every request routed to `ep` (none: no endpoint). */
function gateway(ep: Endpoint | null, maxConnections = 100) {
  const decision = (): RouteDecision => ({
    cluster: "svc",
    pick: (_a, ex) => (ep === null || ex.has(ep.key) ? null : ep),
    timeoutMs: 0,
    perTryTimeoutMs: 0,
    retry: () => null,
    onResult: () => {},
  });
  const gw = new H2Gateway({
    router: { route: () => decision() },
    node: "n1",
    logger: _log,
    limits: DEFAULT_HEAD_LIMITS,
    maxRetryBodyBytes: 64 * 1024,
    now: () => performance.now(),
    timers: new CoarseTimers(),
    idleMs: 60_000,
    maxSessionAgeMs: 600_000,
    maxConnections: () => maxConnections,
  });
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dial = async (e: Endpoint) => await Deno.connect({ hostname: e.hostname, port: e.port });
  (async () => {
    for await (const conn of l) {
      gw.accept({
        conn,
        initial: new Uint8Array(),
        listener: { name: "t", protocol: "http" },
        client: { address: null, port: 0, identity: null },
        clientAddr: null,
        callerLine: undefined,
      }, { key: "k", dial });
    }
  })();
  return {
    port: (l.addr as Deno.NetAddr).port,
    async close() {
      l.close();
      await gw.drain(0);
    },
  };
}

/** One request on `c`: status, body, trailers and the response head. */
async function call(c: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders) {
  const req = c.request(headers);
  let body = "";
  let trailers: http2.IncomingHttpHeaders | null = null;
  req.on("data", (d) => body += d);
  req.on("trailers", (t) => trailers = t);
  const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    req.on("response", resolve);
    req.on("error", reject);
  });
  req.end();
  if (!req.closed) await new Promise((r) => req.on("close", r));
  return { head, body, trailers: trailers as http2.IncomingHttpHeaders | null };
}

Deno.test("H2Gateway relays a stream to its endpoint, trailers included", async () => {
  const a = await app();
  const g = gateway({ key: "app", hostname: "127.0.0.1", port: a.port });
  const c = http2.connect(`http://127.0.0.1:${g.port}`);
  try {
    const r = await call(c, { ":path": "/x" });
    assertEquals(Number(r.head[":status"]), 200);
    assertEquals(r.body, "ok /x");
    assertEquals(r.trailers?.["x-t"], "1");
  } finally {
    c.close();
    await g.close();
    await a.close();
  }
});

Deno.test("H2Gateway answers gRPC calls it cannot place as trailers-only gRPC errors", async () => {
  const g = gateway(null);
  const c = http2.connect(`http://127.0.0.1:${g.port}`);
  try {
    const r = await call(c, {
      ":method": "POST",
      ":path": "/p.S/M",
      "content-type": "application/grpc",
    });
    assertEquals(Number(r.head[":status"]), 200);
    assertEquals(r.head["grpc-status"], "14");
    assertEquals(r.head["x-skein-error"], "no_endpoint");
    assertEquals(r.head["x-skein-proxy"], "n1");
    const plain = await call(c, { ":path": "/x" });
    assertEquals(Number(plain.head[":status"]), 503, "a non-gRPC request gets the HTTP status");
  } finally {
    c.close();
    await g.close();
  }
});

Deno.test("H2Gateway closes a connection over its cap and serves the ones within", async () => {
  const a = await app();
  const g = gateway({ key: "app", hostname: "127.0.0.1", port: a.port }, 1);
  const first = http2.connect(`http://127.0.0.1:${g.port}`);
  const second = http2.connect(`http://127.0.0.1:${g.port}`);
  second.on("error", () => {});
  try {
    assertEquals((await call(first, { ":path": "/1" })).body, "ok /1");
    const refused = await call(second, { ":path": "/2" }).then(() => false, () => true);
    assert(refused || second.destroyed, "the second connection was served");
  } finally {
    first.close();
    second.destroy();
    await g.close();
    await a.close();
  }
});

Deno.test("H2Gateway carries a request's trailers to the endpoint", async () => {
  const a = await app();
  const g = gateway({ key: "app", hostname: "127.0.0.1", port: a.port });
  const c = http2.connect(`http://127.0.0.1:${g.port}`);
  try {
    const req = c.request({ ":method": "POST", ":path": "/echo-trailers" }, {
      waitForTrailers: true,
    });
    req.on("wantTrailers", () => req.sendTrailers({ "x-req-t": "sent" }));
    let trailers: http2.IncomingHttpHeaders | null = null;
    req.on("trailers", (t) => trailers = t);
    req.on("data", () => {});
    req.end("body");
    if (!req.closed) await new Promise((r) => req.on("close", r));
    assertEquals((trailers as http2.IncomingHttpHeaders | null)?.["x-got"], "sent");
  } finally {
    c.close();
    await g.close();
    await a.close();
  }
});

for (const path of ["/500-empty", "/500-trailers"]) {
  Deno.test(`H2Gateway ends a relayed 5xx response whose end came with its head (${path})`, async () => {
    const a = await app();
    const g = gateway({ key: "app", hostname: "127.0.0.1", port: a.port });
    const c = http2.connect(`http://127.0.0.1:${g.port}`);
    try {
      // The session to the endpoint is open: the try is sent without waiting for a dial.
      assertEquals((await call(c, { ":path": "/warm" })).body, "ok /warm");
      const req = c.request({ ":path": path });
      let ended = false;
      req.on("data", () => {});
      req.on("end", () => ended = true);
      req.on("close", () => ended = true);
      const head = await new Promise<http2.IncomingHttpHeaders>((r) => req.on("response", r));
      assertEquals(Number(head[":status"]), 500);
      // A later call on the same connections: its answer comes after the first one's end.
      assertEquals((await call(c, { ":path": "/x" })).body, "ok /x");
      assert(ended, "the 5xx response never ended");
    } finally {
      c.destroy();
      await g.close();
      await a.close();
    }
  });
}
