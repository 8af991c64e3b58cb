/**
 * The multi-threaded data path through real `skein proxy` processes: connections are served
 * by more than one worker, `/metrics` adds the workers up, the outbound side names the
 * destination for a remote proxy fronting several services, and the circuit breaker holds a
 * request's slot until its response body has passed.
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  adminJson,
  type App,
  applyResources,
  metricsText,
  type ProxyHandle,
  rawGet,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";

function _sum(text: string, family: string, match: Record<string, string>): number {
  const f = parsePrometheusText(text).get(family);
  if (!f) return 0;
  return f.samples.filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

/** An app whose `/stream` sends half a body, then the rest when `finish()` is called. */
function _streamingApp(): { port: number; finish: () => void; close: () => Promise<void> } {
  let release = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    const gate = release.promise;
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(new TextEncoder().encode("first-"));
        await gate;
        c.enqueue(new TextEncoder().encode("last"));
        c.close();
      },
    });
    return new Response(body);
  });
  return {
    port: server.addr.port,
    finish: () => {
      release.resolve();
      release = Promise.withResolvers<void>();
    },
    close: () => server.shutdown(),
  };
}

Deno.test("worker threads share the ports, the metrics and the breaker", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-workers-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("alpha"), startApp("beta")];
  const stream = _streamingApp();
  const proxies: ProxyHandle[] = [];
  try {
    // One proxy fronting two services: its inbound needs x-skein-destination to choose.
    proxies.push(
      await startProxy(dir, {
        node: "vm-multi",
        control: [cp.url],
        services: [
          { name: "alpha", port: apps[0]!.port },
          { name: "beta", port: apps[1]!.port },
          { name: "stream", port: stream.port },
        ],
      }),
    );
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      workers: 3,
      upstreams: [
        { service: "alpha", listen: "127.0.0.1:0" },
        { service: "beta", listen: "127.0.0.1:0" },
        { service: "stream", listen: "127.0.0.1:0" },
      ],
    });
    proxies.push(caller);
    for (const svc of ["alpha", "beta", "stream"]) {
      await waitFor(`${svc} routable from the caller`, async () => {
        const e = await adminJson(caller, "/endpoints") as {
          outbound: { service: string; eligible: number }[];
        };
        return e.outbound.find((d) => d.service === svc)?.eligible === 1;
      });
    }

    await t.step(
      "the outbound side names the destination; a caller cannot override it",
      async () => {
        const a = await rawGet(caller.upstreams.alpha!, "whatever");
        assertEquals([a.status, a.body], [200, "alpha"]);
        const b = await rawGet(caller.upstreams.beta!, "alpha");
        assertEquals([b.status, b.body], [200, "beta"]);
        // A forged x-skein-destination from the app is dropped on the way out.
        const [host, port] = caller.upstreams.beta!.split(":");
        const c = await Deno.connect({ hostname: host!, port: Number(port) });
        await c.write(
          new TextEncoder().encode(
            "GET / HTTP/1.1\r\nhost: x\r\nx-skein-destination: alpha\r\nconnection: close\r\n\r\n",
          ),
        );
        const text = new TextDecoder().decode(
          await new Response(c.readable).arrayBuffer().then((b) => new Uint8Array(b)),
        );
        assert(text.endsWith("beta"), text);
      },
    );

    await t.step("fresh connections are served by more than one worker", async () => {
      const before = await metricsText(caller);
      const n = 48;
      const rs = await Promise.all(
        Array.from({ length: n }, () => rawGet(caller.upstreams.beta!, "beta")),
      );
      assert(rs.every((r) => r.status === 200 && r.body === "beta"));
      const after = await metricsText(caller);
      const per = parsePrometheusText(after).get("skein_worker_requests_total")!.samples;
      const busy = per.filter((s) => s.value > 0).map((s) => s.labels.worker);
      assert(busy.length >= 2, `only workers ${busy} served requests`);
      // The merged counters add up to exactly what was sent.
      const sent = (m: string) =>
        _sum(m, "skein_requests_total", { destination: "beta", status_class: "2xx" });
      assertEquals(sent(after) - sent(before), n);
      assertEquals(
        _sum(after, "skein_worker_requests_total", {}) -
          _sum(before, "skein_worker_requests_total", {}),
        n,
      );
      const ready = await adminJson(caller, "/ready");
      assertEquals(ready.workers, 3);
    });

    await t.step("the breaker holds a slot until the response body has passed", async () => {
      await applyResources(cp.url, [{
        kind: "Policy",
        service: "stream",
        circuit_breaker: { max_requests: 1 },
      }]);
      await waitFor("the caller to apply the policy", async () => {
        const cfg = await adminJson(caller, "/config") as {
          policies: Record<string, { circuit_breaker: { max_requests: number } }>;
        };
        return cfg.policies.stream?.circuit_breaker.max_requests === 1;
      });
      const first = await fetch(`http://${caller.upstreams.stream}/stream`);
      const reader = first.body!.getReader();
      const chunk = await reader.read();
      assertEquals(new TextDecoder().decode(chunk.value), "first-");
      // The head has arrived but the body is still flowing: the one slot is taken, whichever
      // worker the next connections land on.
      for (let i = 0; i < 6; i++) {
        const r = await rawGet(caller.upstreams.stream!, "stream", "/stream");
        assertEquals([r.status, r.headers.get("x-skein-error")], [503, "overloaded"]);
      }
      stream.finish();
      while (!(await reader.read()).done) { /* drain */ }
      await waitFor("the slot to be released", async () => {
        const r = await fetch(`http://${caller.upstreams.stream}/stream`);
        if (r.status !== 200) {
          await r.body?.cancel();
          return false;
        }
        stream.finish();
        return (await r.text()) === "first-last";
      });
    });
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close().catch(() => {});
    stream.finish();
    await stream.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
