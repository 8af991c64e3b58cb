import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import type { Logger } from "../../common/log.ts";
import type { Router } from "../forward/mod.ts";
import { H2Plane } from "./h2_plane.ts";
import { h2Dialer } from "./h2_dial.ts";

const _log = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

/** A listener that counts the connections it accepts. */
function counting() {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen = { n: 0 };
  (async () => {
    for await (const c of l) {
      seen.n++;
      c.close();
    }
  })();
  return { port: (l.addr as Deno.NetAddr).port, seen, close: () => l.close() };
}

Deno.test("an h2 call to a host outside the mesh is refused before any byte leaves", async () => {
  const target = counting();
  try {
    const route = h2Dialer(undefined, undefined);
    await assertRejects(
      () =>
        route.dial({
          key: `api.example.com:${target.port}`,
          hostname: "127.0.0.1",
          port: target.port,
          origin: { serverName: "api.example.com", caPem: null },
        }),
      Error,
      "outside the mesh",
    );
    // A mesh endpoint on a plaintext mesh is dialled (h2c): the listener sees that one only.
    const conn = await route.dial({ key: "p", hostname: "127.0.0.1", port: target.port });
    conn.close();
    for (let i = 0; i < 100 && target.seen.n === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(target.seen.n, 1);
  } finally {
    target.close();
  }
});

Deno.test("H2Plane closes an h2c connection on a listener it has no route for (an ingress one)", async () => {
  const plane = new H2Plane({
    node: "n",
    logger: _log,
    limits: { maxHeadBytes: 65536, maxHeaderCount: 100, maxBodyBytes: Number.MAX_SAFE_INTEGER },
    idleMs: 60_000,
    meshTls: undefined,
    maxConnections: () => 10,
    router: () => ({ route: () => null }) as unknown as Router,
  });
  const closed: string[] = [];
  const fake = (name: string) => ({
    conn: { close: () => closed.push(name) } as unknown as Deno.Conn,
    initial: new Uint8Array(),
    listener: { name, protocol: "http" as const },
    client: { address: null, port: 0, identity: null },
    clientAddr: null,
    callerLine: undefined,
  });
  plane.handoff(fake("ingress:0"));
  assertEquals(closed, ["ingress:0"], "an ingress listener does not serve h2c");
  assertEquals(plane.requests, 0);
  assert(plane.outbound === 0 && plane.inbound === 0);
  await plane.drain(0);
  plane.close();
});
