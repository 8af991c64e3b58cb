/**
 * A callee proxy whose application never saw a call turns the caller's mux stream down
 * unread, so the calling proxy retries even a POST on another endpoint; a plain client of the
 * same callee still gets the ordinary 502.
 * @module
 */
import { assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import {
  ConnectionPool,
  type Endpoint,
  HttpForwarder,
  type Outcome,
  TlsListener,
} from "../forward/mod.ts";
import { staticRouter } from "../../tests/mesh_hotpath/static_router.ts";
import { MuxSession } from "./session.ts";

Deno.test("a callee whose app refuses the connect refuses the stream; the caller retries a POST", async () => {
  let hits = 0;
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    hits++;
    return new Response(`got ${(await r.text()).length}`);
  });
  // The callee's "app": a port bound and closed again, so connects to it are refused.
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadApp: Endpoint = { key: "app", hostname: "127.0.0.1", port: gone.addr.port };
  gone.close();

  // The callee proxy: mux sessions on a TCP port feed its forwarder's listener.
  const muxPort = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const streams = new TlsListener(muxPort.addr as Deno.NetAddr, () => {});
  const served: MuxSession[] = [];
  const accepting = (async () => {
    for await (const c of muxPort) {
      served.push(
        new MuxSession(c, {
          role: "server",
          peerIdentity: null,
          onStream: (s) => streams.push(s),
        }),
      );
    }
  })();
  const callee = new HttpForwarder(streams, {
    node: "callee",
    listener: { name: "inbound", protocol: "http" },
    router: staticRouter({ endpoints: [deadApp], retries: 1 }),
    logger: nullLogger,
  });
  // The same callee reached without mux (a plain client).
  const plainCallee = new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    node: "callee",
    listener: { name: "inbound", protocol: "http" },
    router: staticRouter({ endpoints: [deadApp] }),
    logger: nullLogger,
  });

  const calleeEp: Endpoint = {
    key: "callee",
    hostname: "127.0.0.1",
    port: (muxPort.addr as Deno.NetAddr).port,
  };
  const backendEp: Endpoint = { key: "backend", hostname: "127.0.0.1", port: backend.addr.port };
  const clients: MuxSession[] = [];
  const pool = new ConnectionPool({
    connect: async (ep) => {
      const c = await Deno.connect({ hostname: ep.hostname, port: ep.port });
      if (ep.key !== "callee") return c;
      const s = new MuxSession(c, { role: "client", peerIdentity: null });
      clients.push(s);
      return s.open();
    },
  });
  const outcomes: [string, Outcome][] = [];
  const caller = new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    node: "caller",
    listener: { name: "svc", protocol: "http" },
    router: staticRouter({
      endpoints: [calleeEp, backendEp],
      retries: 1,
      onResult: (ep, o) => outcomes.push([ep.key, o]),
    }),
    logger: nullLogger,
    pool,
  });
  try {
    const r = await fetch(`http://127.0.0.1:${caller.addr.port}/pay`, {
      method: "POST",
      body: "x".repeat(300),
    });
    assertEquals([r.status, await r.text()], [200, "got 300"]);
    assertEquals(outcomes[0], ["callee", {
      kind: "connect_failure",
      reason: "refused by the callee",
    }]);
    assertEquals(outcomes[1], ["backend", { kind: "response", status: 200 }]);
    assertEquals(hits, 1);
    assertEquals(callee.stats().refused, 1);

    const p = await fetch(`http://127.0.0.1:${plainCallee.addr.port}/pay`, {
      method: "POST",
      body: "y",
    });
    await p.text();
    assertEquals([p.status, p.headers.get("x-skein-error")], [502, "upstream_connect_failure"]);
    assertEquals(plainCallee.stats().refused, 0);
  } finally {
    await caller.close();
    await callee.close();
    await plainCallee.close();
    pool.close();
    for (const s of [...clients, ...served]) s.close();
    muxPort.close();
    await accepting.catch(() => {});
    await backend.shutdown();
  }
});
