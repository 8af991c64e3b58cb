/**
 * A reload on the in-process data plane (`workers: 1`): an added upstream serves, a removed one
 * refuses new connections while its in-flight request completes, and a new limit holds for
 * the next request while the connection open before it keeps working.
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { planProxyReload, ProxyConfig } from "../../config/mod.ts";
import type { Catalog } from "../discovery/mod.ts";
import { LocalDataPlanes } from "./data_planes.ts";

function app(name: string) {
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (new URL(req.url).pathname === "/slow") {
      arrived.resolve();
      await release.promise;
    }
    return new Response(name);
  });
  return { server, arrived: arrived.promise, release: () => release.resolve() };
}

const base = {
  node: "t",
  control: ["https://127.0.0.1:9"],
  admin: "127.0.0.1:0",
  inbound: "127.0.0.1:0",
  drain_timeout: "30s",
};

async function refused(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch {
    return true;
  }
}

Deno.test("in-process data plane: upstreams opened and closed, limits changed", async () => {
  const a = app("a");
  const b = app("b");
  const before = ProxyConfig.parse({
    ...base,
    upstreams: [{ service: "a", listen: "127.0.0.1:0" }],
  });
  const planes = new LocalDataPlanes(before, nullLogger);
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const inst = (service: string, port: number) => ({
      id: service,
      service,
      node: "n",
      address: "127.0.0.1",
      port,
      zone: "",
      version: "",
      weight: 1,
      tags: [],
      capabilities: [],
      meta: {},
      health: "passing" as const,
    });
    planes.applyCatalog({
      index: 1,
      services: { a: [inst("a", a.server.addr.port)], b: [inst("b", b.server.addr.port)] },
      resources: [],
      trust: { roots: [], revoked: [] },
    } as Catalog);
    const aPort = planes.ports.upstreams.a!;
    const call = async (port: number, path = "/", headers: Record<string, string> = {}) => {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers, client });
      return { status: r.status, body: await r.text() };
    };
    const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`x-h${i}`, "v"]));
    assertEquals(await call(aPort, "/", many), { status: 200, body: "a" });

    const next = ProxyConfig.parse({
      ...base,
      limits: { max_headers: 8 },
      upstreams: [
        { service: "a", listen: "127.0.0.1:0" },
        { service: "b", listen: "127.0.0.1:0" },
      ],
    });
    const plan = planProxyReload(before, next);
    const r = await planes.reconfigure({ ...plan, locals: null, drainMs: 30_000 });
    assertEquals(r.failed, []);
    const bPort = r.opened.b!;
    assertEquals(planes.ports.upstreams.b, bPort);
    assertEquals(await call(bPort), { status: 200, body: "b" });
    assertEquals((await call(aPort, "/", many)).status, 431, "the new max_headers holds");

    // Remove b with a request in flight on it.
    const slow = call(bPort, "/slow");
    await b.arrived;
    const plan2 = planProxyReload(plan.running, before);
    assertEquals(plan2.remove, ["b"]);
    await planes.reconfigure({ ...plan2, locals: null, drainMs: 30_000 });
    assert(await refused(bPort), "the removed listener no longer accepts");
    assertEquals(planes.ports.upstreams.b, undefined);
    b.release();
    assertEquals(await slow, { status: 200, body: "b" });
    assertEquals(await call(aPort), { status: 200, body: "a" });
  } finally {
    client.close();
    a.release();
    b.release();
    await planes.drain(0);
    await Promise.all([a.server.shutdown(), b.server.shutdown()]);
  }
});
