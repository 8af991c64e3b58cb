import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { nullLogger } from "../../common/log.ts";
import { type Endpoint, ProxyError, type RouteDecision } from "../forward/mod.ts";
import { TcpProxy, type TcpRouter } from "./mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function router(eps: Endpoint[], picked: string[]): TcpRouter {
  return {
    route(): RouteDecision | ProxyError {
      if (eps.length === 0) return new ProxyError(503, "no_endpoint", "none");
      return {
        cluster: "c",
        timeoutMs: 0,
        perTryTimeoutMs: 0,
        pick: (_attempt, exclude) => eps.find((e) => !exclude.has(e.key)) ?? null,
        retry: (attempt) => (attempt < 2 ? 0 : null),
        onResult: (ep, o) => picked.push(`${ep.key}:${o.kind}`),
      };
    },
  };
}

/** An upstream that uppercases everything until the client half-closes, then says "END". */
function upperServer(): { port: number; close: () => void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of l) {
      (async () => {
        const buf = new Uint8Array(65536);
        try {
          while (true) {
            const n = await c.read(buf);
            if (n === null) break;
            const s = new TextDecoder().decode(buf.subarray(0, n)).toUpperCase();
            await c.write(new TextEncoder().encode(s));
          }
          // Only reachable if the proxy forwarded the client's FIN as a half-close.
          await c.write(new TextEncoder().encode("END"));
        } finally {
          c.close();
        }
      })();
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

async function readAll(c: Deno.Conn): Promise<string> {
  let s = "";
  const buf = new Uint8Array(65536);
  while (true) {
    const n = await c.read(buf);
    if (n === null) return s;
    s += new TextDecoder().decode(buf.subarray(0, n));
  }
}

Deno.test("TcpProxy relays bytes, passes half-close on, and counts bytes", opts, async () => {
  const up = upperServer();
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead: Endpoint = {
    key: "dead",
    hostname: "127.0.0.1",
    port: (l.addr as Deno.NetAddr).port,
  };
  l.close();
  const picked: string[] = [];
  const live: Endpoint = { key: "live", hostname: "127.0.0.1", port: up.port };
  const proxy = TcpProxy.listen("127.0.0.1", 0, {
    listener: { name: "t", protocol: "tcp" },
    router: router([dead, live], picked),
    logger: nullLogger,
  });
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
    await c.write(new TextEncoder().encode("hello tcp"));
    await c.closeWrite();
    const got = await readAll(c);
    c.close();
    assertEquals(got, "HELLO TCPEND");
    assertEquals(picked, ["dead:connect_failure", "live:response"]);
    // Counters are updated as bytes flow; wait for the pair to be torn down.
    while (proxy.stats().active > 0) await new Promise((r) => setTimeout(r, 5));
    const st = proxy.stats();
    assertEquals([st.bytesUp, st.bytesDown, st.accepted], [9, 12, 1]);
  } finally {
    await proxy.drain(0);
    up.close();
  }
});

Deno.test("TcpProxy closes a connection that has no endpoint", opts, async () => {
  const proxy = TcpProxy.listen("127.0.0.1", 0, {
    listener: { name: "t", protocol: "tcp" },
    router: router([], []),
    logger: nullLogger,
  });
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
    assertEquals(await readAll(c).catch(() => ""), "");
    c.close();
    while (proxy.stats().failed < 1) await new Promise((r) => setTimeout(r, 5));
    assert(proxy.stats().failed === 1);
  } finally {
    await proxy.drain(0);
  }
});

Deno.test(
  "TcpProxy closes a connection silent for the idle timeout, not one that talks",
  opts,
  async () => {
    const up = upperServer();
    let now = 0;
    const proxy = TcpProxy.listen("127.0.0.1", 0, {
      listener: { name: "t", protocol: "tcp" },
      router: router([{ key: "live", hostname: "127.0.0.1", port: up.port }], []),
      logger: nullLogger,
      idleTimeoutMs: 10_000,
      now: () => now,
    });
    const buf = new Uint8Array(64);
    const talk = async (c: Deno.Conn, s: string) => {
      await c.write(new TextEncoder().encode(s));
      const n = await c.read(buf);
      return n === null ? null : new TextDecoder().decode(buf.subarray(0, n));
    };
    try {
      const quiet = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
      const chatty = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
      assertEquals(await talk(quiet, "q"), "Q");
      assertEquals(await talk(chatty, "a"), "A");
      now = 9_000;
      proxy.sweepIdle();
      assertEquals(await talk(chatty, "b"), "B", "traffic at 9 s restarts its clock");
      now = 12_000;
      proxy.sweepIdle();
      // quiet: silent since 0 → closed; chatty: last byte at 9 s → still open.
      assertEquals(proxy.stats().idleClosed, 1);
      assertEquals(await quiet.read(buf), null);
      assertEquals(await talk(chatty, "c"), "C");
      quiet.close();
      chatty.close();
    } finally {
      await proxy.drain(0);
      up.close();
    }
  },
);
