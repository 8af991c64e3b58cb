/**
 * End-to-end routing through real `skein proxy` processes: upstream listener, `http_proxy` by
 * Host, errors the proxy generates, TCP through the tunnel, and `/metrics`.
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  adminJson,
  type App,
  get,
  metricsText,
  type ProxyHandle,
  rawGet,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";

Deno.test("a caller reaches both instances through its upstream listener and by Host", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-route-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("orders-1"), startApp("orders-2")];
  const echo = await _startEcho();
  const proxies: ProxyHandle[] = [];
  try {
    for (const [i, a] of apps.entries()) {
      proxies.push(
        await startProxy(dir, {
          node: `vm-${i + 1}`,
          control: [cp.url],
          services: [
            { name: "orders", port: a.port, health: { http: "/healthz", interval: "200ms" } },
          ],
        }),
      );
    }
    proxies.push(
      await startProxy(dir, {
        node: "vm-echo",
        control: [cp.url],
        services: [{ name: "echo", port: echo.port }],
      }),
    );
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      http_proxy: "127.0.0.1:0",
      upstreams: [
        { service: "orders", listen: "127.0.0.1:0" },
        { service: "echo", listen: "127.0.0.1:0", protocol: "tcp" },
      ],
    });
    proxies.push(caller);
    const orders = caller.upstreams.orders!;
    await waitFor("both orders endpoints and the echo endpoint in the caller", async () => {
      const e = await adminJson(caller, "/endpoints") as {
        outbound: { service: string; eligible: number }[];
      };
      return e.outbound.find((d) => d.service === "orders")?.eligible === 2 &&
        e.outbound.find((d) => d.service === "echo")?.eligible === 1;
    });

    await t.step("the upstream listener balances over both instances", async () => {
      const seen = new Map<string, number>();
      for (let i = 0; i < 40; i++) {
        const r = await get(orders);
        assertEquals(r.status, 200);
        seen.set(r.body, (seen.get(r.body) ?? 0) + 1);
      }
      assertEquals([...seen.keys()].sort(), ["orders-1", "orders-2"]);
      assertEquals(apps[0]!.hits + apps[1]!.hits, 40);
    });

    await t.step("http_proxy routes by Host, with or without a port", async () => {
      const a = await rawGet(caller.httpProxy!, "orders");
      assertEquals(a.status, 200);
      assert(a.body.startsWith("orders-"), a.body);
      const b = await rawGet(caller.httpProxy!, "orders:8080");
      assertEquals(b.status, 200);
    });

    await t.step("an unknown service gets a 404 the proxy signs", async () => {
      const r = await rawGet(caller.httpProxy!, "nope");
      assertEquals(r.status, 404);
      assertEquals(r.headers.get("x-skein-proxy"), "vm-caller");
      assertEquals(r.headers.get("x-skein-error"), "no_route");
    });

    await t.step(
      "opaque TCP goes through the upstream listener and the remote inbound",
      async () => {
        const [host, port] = caller.upstreams.echo!.split(":");
        const c = await Deno.connect({ hostname: host!, port: Number(port) });
        const msg = new TextEncoder().encode("hello over tcp\n");
        await c.write(msg);
        await c.closeWrite();
        const got: Uint8Array[] = [];
        const buf = new Uint8Array(1024);
        while (true) {
          const n = await c.read(buf);
          if (n === null) break;
          got.push(buf.slice(0, n));
        }
        c.close();
        assertEquals(new TextDecoder().decode(_concat(got)), "hello over tcp\n");
      },
    );

    await t.step("/metrics parses and counts the requests by destination", async () => {
      const fams = parsePrometheusText(await metricsText(caller));
      const req = fams.get("skein_requests_total");
      assert(req, "skein_requests_total is exported");
      const ok = req.samples.filter((s) =>
        s.labels.destination === "orders" && s.labels.status_class === "2xx"
      ).reduce((n, s) => n + s.value, 0);
      assertEquals(ok, 42);
      assert(fams.has("skein_request_duration_seconds"));
      const tcp = fams.get("skein_tcp_connections_total")?.samples.find((s) =>
        s.labels.destination === "echo"
      );
      assertEquals(tcp?.value, 1);
      // The serving side counts inbound requests under route="inbound".
      const inbound = parsePrometheusText(await metricsText(proxies[0]!)).get(
        "skein_requests_total",
      )!.samples.filter((s) => s.labels.route === "inbound").reduce((n, s) => n + s.value, 0);
      assertEquals(inbound, apps[0]!.hits);
    });

    await t.step("/ready, /config and unknown admin pages", async () => {
      const ready = await fetch(`http://${caller.admin}/ready`);
      assertEquals(ready.status, 200);
      const body = await ready.json();
      assertEquals(body.catalog.source, "control");
      const cfg = await adminJson(caller, "/config") as { config: { node: string } };
      assertEquals(cfg.config.node, "vm-caller");
      const nf = await fetch(`http://${caller.admin}/nope`);
      await nf.body?.cancel();
      assertEquals(nf.status, 404);
    });
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await echo.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

function _concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A TCP echo server that echoes until the client half-closes. */
async function _startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const c of l) {
      conns.add(c);
      (async () => {
        const buf = new Uint8Array(1024);
        try {
          while (true) {
            const n = await c.read(buf);
            if (n === null) break;
            await c.write(buf.subarray(0, n));
          }
          await c.closeWrite();
        } catch {
          // Client gone.
        } finally {
          conns.delete(c);
          try {
            c.close();
          } catch {
            // Closed.
          }
        }
      })();
    }
  })().catch(() => {});
  await Promise.resolve();
  return {
    port: (l.addr as Deno.NetAddr).port,
    async close() {
      l.close();
      for (const c of conns) c.close();
      await loop;
    },
  };
}
