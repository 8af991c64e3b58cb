import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { ConnectError, ConnectionPool, type Endpoint } from "./mod.ts";
import { MIN_CONNECTION_LIFE_MS, retireBeforeExpiry } from "./pool.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A listener that accepts and holds connections open until closed; counts them. */
function holdServer(): { ep: Endpoint; accepted: Deno.Conn[]; close: () => void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  (async () => {
    for await (const c of l) accepted.push(c);
  })().catch(() => {});
  const port = (l.addr as Deno.NetAddr).port;
  return {
    ep: { key: `127.0.0.1:${port}`, hostname: "127.0.0.1", port },
    accepted,
    close: () => {
      l.close();
      for (const c of accepted) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
    },
  };
}

Deno.test(
  "ConnectionPool reuses the most recent idle connection and caps idle per endpoint",
  opts,
  async () => {
    const s = holdServer();
    const pool = new ConnectionPool({ maxIdlePerEndpoint: 2 });
    try {
      const a = await pool.acquire(s.ep);
      const b = await pool.acquire(s.ep);
      const c = await pool.acquire(s.ep);
      pool.release(a);
      pool.release(b);
      pool.release(c); // over the cap: closed
      assertEquals(pool.stats().idle, 2);
      assertEquals(pool.stats().evictedIdle, 1);
      const again = await pool.acquire(s.ep);
      assert(again === b);
      assert(again.reused);
      assertEquals(pool.stats().opened, 3);
      const fresh = await pool.acquire(s.ep, true);
      assert(!fresh.reused);
      pool.discard(again);
      pool.discard(fresh);
    } finally {
      pool.close();
      s.close();
    }
  },
);

Deno.test(
  "ConnectionPool evicts idle connections the peer closed or that outlived the idle timeout",
  opts,
  async () => {
    const s = holdServer();
    let now = 0;
    const pool = new ConnectionPool({ idleTimeoutMs: 1_000, now: () => now });
    try {
      const a = await pool.acquire(s.ep);
      const b = await pool.acquire(s.ep);
      pool.release(a);
      pool.release(b);
      while (s.accepted.length < 2) await new Promise((r) => setTimeout(r, 5));
      s.accepted[0]!.close(); // the server closes a's peer
      while (pool.stats().evictedDead < 1) await new Promise((r) => setTimeout(r, 5));
      assertEquals(pool.stats().idle, 1);
      now = 999;
      pool.sweep();
      assertEquals(pool.stats().idle, 1);
      now = 1_001;
      pool.sweep();
      assertEquals(pool.stats().idle, 0);
      assertEquals(pool.stats().evictedIdle, 1);
    } finally {
      pool.close();
      s.close();
    }
  },
);

Deno.test("ConnectionPool reports refused connects as ConnectError", opts, async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const pool = new ConnectionPool();
  try {
    await rejects(pool.acquire({ key: "x", hostname: "127.0.0.1", port }), ConnectError);
  } finally {
    pool.close();
  }
});

Deno.test("connections past the maximum age are closed instead of reused", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const acceptLoop = (async () => {
    for await (const c of l) accepted.push(c);
  })();
  let now = 0;
  const pool = new ConnectionPool({ maxAgeMs: 1000, now: () => now });
  const ep = { key: "k", hostname: "127.0.0.1", port: (l.addr as Deno.NetAddr).port };
  const a = await pool.acquire(ep);
  pool.release(a);
  now = 500;
  const b = await pool.acquire(ep);
  assertEquals(b, a, "young enough: reused");
  now = 1000;
  pool.release(b); // too old to go back
  assertEquals(pool.stats().retired, 1);
  assertEquals(pool.stats().idle, 0);
  const c = await pool.acquire(ep);
  assert(c !== a, "a fresh connection");
  pool.release(c);
  now = 2500; // aged while idle: skipped on acquire
  const d = await pool.acquire(ep);
  assert(d !== c);
  assertEquals(pool.stats().retired, 2);
  assertEquals(pool.stats().opened, 3);
  pool.discard(d);
  pool.close();
  l.close();
  await acceptLoop.catch(() => {});
  for (const x of accepted) x.close();
});

Deno.test(
  "a connection that says it is not reusable is closed instead of pooled",
  opts,
  async () => {
    const s = holdServer();
    // A stand-in for a mux stream whose session got GoAway: it answers `reusable` itself.
    let reusable = true;
    const pool = new ConnectionPool({
      connect: async (ep) => {
        const c = await Deno.connect({ hostname: ep.hostname, port: ep.port });
        Object.defineProperty(c, "reusable", { get: () => reusable });
        return c;
      },
    });
    try {
      const a = await pool.acquire(s.ep);
      pool.release(a);
      reusable = false; // went away while idle: skipped on acquire
      const b = await pool.acquire(s.ep);
      assert(b !== a, "a fresh connection");
      assertEquals(pool.stats().retired, 1);
      pool.release(b); // still not reusable: closed on release
      assertEquals(pool.stats().retired, 2);
      assertEquals(pool.stats().idle, 0);
      reusable = true;
      const c = await pool.acquire(s.ep);
      pool.release(c);
      assertEquals(pool.stats().idle, 1, "reusable ones are pooled as before");
    } finally {
      pool.close();
      s.close();
    }
  },
);

Deno.test("retireBeforeExpiry() stops new requests halfway to the certificate's expiry", () => {
  assertEquals(retireBeforeExpiry(0, 60_000), 30_000);
  assertEquals(retireBeforeExpiry(10_000, 50_000), 30_000);
  assertEquals(retireBeforeExpiry(0), Infinity, "no certificate: no deadline");
  assertEquals(retireBeforeExpiry(0, 100), MIN_CONNECTION_LIFE_MS, "never a dial loop");
  assertEquals(retireBeforeExpiry(5_000, 0), 5_000 + MIN_CONNECTION_LIFE_MS);
  assertEquals(retireBeforeExpiry(7, 1_000_060_000, 1_000_000_000), 30_007, "two clocks");
});

Deno.test("a connection whose certificate nears expiry is not reused", async () => {
  // The callee closes a connection when the caller's certificate expires, whatever request is
  // on it; the pool stops reusing it halfway there so no request is cut.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const acceptLoop = (async () => {
    for await (const c of l) accepted.push(c);
  })();
  // The pool's own clock is monotonic and starts anywhere; certificates carry wall-clock time.
  let now = 5_000;
  const wall = 1_800_000_000_000;
  const port = (l.addr as Deno.NetAddr).port;
  const pool = new ConnectionPool({
    now: () => now,
    wallNow: () => wall + now - 5_000,
    connect: async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      return Object.assign(c, { localNotAfter: wall + (now - 5_000) + 60_000 });
    },
  });
  const ep = { key: "k", hostname: "127.0.0.1", port };
  const a = await pool.acquire(ep);
  pool.release(a);
  now = 34_999;
  const b = await pool.acquire(ep);
  assertEquals(b, a, "well before expiry: reused");
  pool.release(b);
  now = 35_000;
  const c = await pool.acquire(ep);
  assert(c !== a, "halfway to expiry: a fresh connection");
  assertEquals(pool.stats().retired, 1);
  now = 65_000;
  pool.release(c);
  assertEquals(pool.stats().retired, 2, "released past its own halfway point: closed");
  pool.close();
  l.close();
  await acceptLoop.catch(() => {});
  for (const x of accepted) x.close();
});
