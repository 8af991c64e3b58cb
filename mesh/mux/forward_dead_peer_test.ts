/**
 * The forwarder over a mux session to a callee that stopped answering (cut off, or frozen,
 * after the session was made): the session's ping ends it, the call in flight fails as a
 * reset instead of hanging to the caller's timeout, and a GET goes on to the next endpoint.
 * @module
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { ConnectionPool, type Endpoint, HttpForwarder, type Outcome } from "../forward/mod.ts";
import { staticRouter } from "../../tests/mesh_hotpath/static_router.ts";
import { MuxSession } from "./session.ts";

Deno.test("a call in flight to a callee that stopped answering is failed by the mux ping and a GET is retried elsewhere", async () => {
  let hits = 0;
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    hits++;
    return new Response("from backend");
  });
  // The silent callee: its kernel accepts the connection, then nothing ever comes back.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) held.push(c);
  })();
  const silentEp: Endpoint = {
    key: "silent",
    hostname: "127.0.0.1",
    port: (silent.addr as Deno.NetAddr).port,
  };
  const backendEp: Endpoint = { key: "backend", hostname: "127.0.0.1", port: backend.addr.port };
  const sessions: MuxSession[] = [];
  const endedBy: Error[] = [];
  const pool = new ConnectionPool({
    connect: async (ep) => {
      const c = await Deno.connect({ hostname: ep.hostname, port: ep.port });
      if (ep.key !== "silent") return c;
      // Default ping settings, as the proxy's connector uses them.
      const s = new MuxSession(c, {
        role: "client",
        peerIdentity: null,
        onClose: (e) => endedBy.push(e),
      });
      sessions.push(s);
      return s.open();
    },
  });
  const outcomes: [string, Outcome][] = [];
  const fwd = new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    node: "test",
    listener: { name: "test", protocol: "http" },
    router: staticRouter({
      endpoints: [silentEp, backendEp],
      retries: 1,
      onResult: (ep, o) => outcomes.push([ep.key, o]),
    }),
    logger: nullLogger,
    pool,
  });
  try {
    const r = await fetch(`http://127.0.0.1:${fwd.addr.port}/item`);
    assertEquals([r.status, await r.text()], [200, "from backend"]);
    assertEquals(outcomes, [["silent", { kind: "reset" }], ["backend", {
      kind: "response",
      status: 200,
    }]]);
    assertEquals(hits, 1);
    assertEquals(endedBy.length, 1);
    assert(endedBy[0] instanceof Deno.errors.TimedOut, String(endedBy[0]));
    assert(endedBy[0].message.includes("answered no ping"), endedBy[0].message);
  } finally {
    await fwd.close();
    pool.close();
    for (const s of sessions) s.close();
    for (const c of held) c.close();
    silent.close();
    await accepting.catch(() => {});
    await backend.shutdown();
  }
});
