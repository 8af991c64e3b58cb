/**
 * An injected fault delay does not outlive its connection: closing (or draining past its
 * deadline) the forwarder ends the wait at once, nothing is sent upstream, and the decision
 * is told the exchange is over, so its circuit-breaker slot is given back.
 * @module
 */
import { assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { HttpForwarder, type RouteDecision, type Router } from "./mod.ts";
import { staticRouter } from "../../tests/mesh_hotpath/static_router.ts";

Deno.test("closing the forwarder ends a request's fault delay without sending it", async () => {
  let hits = 0;
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    hits++;
    return new Response("ok");
  });
  const inner = staticRouter({
    endpoints: [{ key: "app", hostname: "127.0.0.1", port: backend.addr.port }],
  });
  const done: number[] = [];
  const routed = Promise.withResolvers<void>();
  const router: Router = {
    route(head, listener, client) {
      const d = inner.route(head, listener, client) as RouteDecision;
      routed.resolve();
      return { ...d, delayMs: 60_000, onDone: (status) => done.push(status) };
    },
  };
  const fwd = new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    node: "n",
    listener: { name: "svc", protocol: "http" },
    router,
    logger: nullLogger,
  });
  const c = await Deno.connect({ hostname: "127.0.0.1", port: fwd.addr.port });
  try {
    await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\nhost: app\r\n\r\n"));
    await routed.promise;
    // Bounded well below the 60 s delay: without the fix close() waits the delay out.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      fwd.close().then(() => "closed"),
      new Promise<string>((r) => timer = setTimeout(() => r("still waiting"), 40_000)),
    ]);
    clearTimeout(timer);
    assertEquals(closed, "closed");
    assertEquals(done, [0], "the exchange ended with no response");
    assertEquals(hits, 0, "nothing reached the app");
  } finally {
    c.close();
    await backend.shutdown();
  }
});
