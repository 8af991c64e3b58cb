/**
 * The multi-threaded data path through real `skein proxy` processes: connections are served
 * by more than one worker, `/metrics` adds the workers up, the outbound side names the
 * destination (an app cannot forge it), and the circuit breaker holds a
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
  waitEligible,
  waitFor,
} from "./helpers.ts";
import { plaintextExchange, run } from "../security/_pki.ts";

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
    // One proxy per service, started in parallel (multi_service_test covers a shared proxy).
    proxies.push(
      ...await Promise.all(
        [["alpha", apps[0]!.port], ["beta", apps[1]!.port], ["stream", stream.port]].map((
          [name, port],
        ) =>
          startProxy(dir, {
            node: `vm-${name}`,
            control: [cp.url],
            workers: 1,
            services: [{ name, port }],
          })
        ),
      ),
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

/** Connections per refusal check: 2^-(N-1) is the chance all reach one of the 2 workers. */
const REFUSAL_CONNECTIONS = 12;

Deno.test("with mTLS every worker terminates TLS: requests spread, refusals hold on each", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-workers-mtls-" });
  const cp = await startControl(dir);
  const app = startApp("ledger");
  const proxies: ProxyHandle[] = [];
  try {
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      workers: 2,
      services: [{ name: "ledger", port: app.port }],
    });
    proxies.push(callee);
    // One connection per call in flight (no mux): 32 connections the kernel spreads over the
    // callee's two TLS servers, so both must terminate TLS. A mux caller would bring only its
    // workers' sessions, which may well all land on one callee worker.
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      workers: 2,
      services: [{ name: "billing", port: app.port }],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
    }, { env: { SKEIN_MESH_MUX: "off" } });
    proxies.push(caller);
    await callee.child.waitLine(/data plane started.*mtls=true/);
    await caller.child.waitLine(/data plane started.*mtls=true/);
    await waitEligible(caller, "ledger", 1);
    const ready = await adminJson(callee, "/ready");
    assertEquals(ready.workers, 2);

    // A slow app makes each caller worker open many pooled mTLS connections to the callee,
    // which the kernel spreads over the callee's two TLS servers.
    app.delayMs = 1000; // long enough that all 32 overlap even on a stalled machine
    const n = 32;
    const rs = await Promise.all(
      Array.from({ length: n }, () => rawGet(caller.upstreams.ledger!, "ledger")),
    );
    app.delayMs = 0;
    assert(rs.every((r) => r.status === 200 && r.body === "ledger"), JSON.stringify(rs[0]));
    const e = await adminJson(callee, "/endpoints") as {
      workers: { index: number; requests: number }[];
    };
    assertEquals(e.workers.length, 2);
    for (const w of e.workers) assert(w.requests > 0, `callee worker ${w.index} served none`);
    assertEquals(e.workers.reduce((a, w) => a + w.requests, 0), n);

    // Plaintext and certificate-less clients get no HTTP answer on any worker.
    const port = Number(callee.inbound.slice(callee.inbound.lastIndexOf(":") + 1));
    const req = "GET / HTTP/1.1\r\nhost: ledger\r\nconnection: close\r\n\r\n";
    const hits = app.hits;
    const plain = await Promise.all(
      Array.from({ length: REFUSAL_CONNECTIONS }, () => plaintextExchange(port, req)),
    );
    for (const text of plain) assert(!/HTTP\/1\.[01] \d{3}/.test(text), text);
    const noCert = await Promise.all(
      Array.from({ length: REFUSAL_CONNECTIONS / 2 }, () =>
        run("openssl", [
          "s_client",
          "-connect",
          `127.0.0.1:${port}`,
          "-quiet",
        ], req)),
    );
    for (const r of noCert) assert(!/HTTP\/1\.[01] \d{3}/.test(r.stdout), r.stdout);
    assertEquals(app.hits, hits, "no outside client reached the app");

    // The mesh still works through both workers afterwards.
    const again = await rawGet(caller.upstreams.ledger!, "ledger");
    assertEquals([again.status, again.body], [200, "ledger"]);
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
