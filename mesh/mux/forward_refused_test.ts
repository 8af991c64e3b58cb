/**
 * The forwarder over mux streams: a stream the callee refuses unread counts as a failed
 * connect, so even a POST goes on to the next endpoint.
 * @module
 */
import { assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { ConnectionPool, type Endpoint, HttpForwarder, type Outcome } from "../forward/mod.ts";
import { staticRouter } from "../../tests/mesh_hotpath/static_router.ts";
import { MuxSession } from "./session.ts";

Deno.test("a POST whose stream the callee refuses is retried on the next endpoint", async () => {
  let hits = 0;
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    hits++;
    return new Response(`got ${(await r.text()).length}`);
  });
  // A callee that is draining: it turns every stream down without reading it.
  const refuser = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served: MuxSession[] = [];
  const accepting = (async () => {
    for await (const c of refuser) {
      served.push(
        new MuxSession(c, { role: "server", peerIdentity: null, onStream: (s) => s.refuse() }),
      );
    }
  })();
  const refuserEp: Endpoint = {
    key: "refuser",
    hostname: "127.0.0.1",
    port: (refuser.addr as Deno.NetAddr).port,
  };
  const backendEp: Endpoint = { key: "backend", hostname: "127.0.0.1", port: backend.addr.port };
  const clients: MuxSession[] = [];
  const pool = new ConnectionPool({
    connect: async (ep) => {
      const c = await Deno.connect({ hostname: ep.hostname, port: ep.port });
      if (ep.key !== "refuser") return c;
      const s = new MuxSession(c, { role: "client", peerIdentity: null });
      clients.push(s);
      return s.open();
    },
  });
  const outcomes: [string, Outcome][] = [];
  const start = (retries: number) =>
    new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
      node: "test",
      listener: { name: "test", protocol: "http" },
      router: staticRouter({
        endpoints: [refuserEp, backendEp],
        retries,
        onResult: (ep, o) => outcomes.push([ep.key, o]),
      }),
      logger: nullLogger,
      pool,
    });
  const withRetry = start(1);
  const noRetry = start(0);
  try {
    const r = await fetch(`http://127.0.0.1:${withRetry.addr.port}/pay`, {
      method: "POST",
      body: "x".repeat(300),
    });
    assertEquals([r.status, await r.text()], [200, "got 300"]);
    assertEquals(outcomes[0], ["refuser", {
      kind: "connect_failure",
      reason: "refused by the callee",
    }]);
    assertEquals(outcomes[1], ["backend", { kind: "response", status: 200 }]);
    assertEquals(hits, 1);

    // Without a retry the client learns it was a failed connect (nothing took effect).
    outcomes.length = 0;
    const r2 = await fetch(`http://127.0.0.1:${noRetry.addr.port}/pay`, {
      method: "POST",
      body: "y",
    });
    await r2.text();
    assertEquals([r2.status, r2.headers.get("x-skein-error")], [502, "upstream_connect_failure"]);
    assertEquals(hits, 1);
  } finally {
    await withRetry.close();
    await noRetry.close();
    pool.close();
    for (const s of [...clients, ...served]) s.close();
    refuser.close();
    await accepting.catch(() => {});
    await backend.shutdown();
  }
});
