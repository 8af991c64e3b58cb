/**
 * Tracing and access logs on real proxy processes: one request through a caller proxy and a
 * callee proxy makes one trace (client span, then server span, then the app's parent) that
 * an OTLP/HTTP receiver written here gets; both proxies write access-log lines, and a
 * SIGHUP after a logrotate-style move starts a new file.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { createJoinToken } from "../skein_cli.ts";
import { testFetch } from "../tls_fixture.ts";
import { type ProxyHandle, startControl, startProxy, waitFor } from "./helpers.ts";

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  kind: number;
  name: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}

/** An OTLP/HTTP JSON receiver keeping every span it is sent. */
function otlpReceiver(): { url: string; spans: Span[]; close: () => Promise<void> } {
  const spans: Span[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (new URL(req.url).pathname !== "/v1/traces") return new Response("no", { status: 404 });
    const body = await req.json();
    for (const rs of body.resourceSpans ?? []) {
      for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
    }
    return Response.json({});
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    spans,
    close: () => server.shutdown(),
  };
}

function attr(s: Span, key: string): unknown {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : Object.values(v)[0];
}

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_SPAN = "00f067aa0ba902b7";

Deno.test("one request across two proxies: one trace exported over OTLP, access lines on both", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-observe-" });
  const otlp = otlpReceiver();
  const seen: (string | null)[] = [];
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    seen.push(req.headers.get("traceparent"));
    return new Response("ledger says hi");
  });
  const cp = await startControl(dir, "cp-1", 0, {}, {
    telemetry: { otlp: otlp.url, sampling: "never" },
  });
  const proxies: ProxyHandle[] = [];
  try {
    await cp.child.waitLine(/tracing on/);
    for (const s of ["ledger", "billing"]) {
      await Deno.writeTextFile(`${dir}/${s}.token`, await createJoinToken(cp.url, cp.token, s));
    }
    const telemetry = { otlp: otlp.url, sampling: "never" };
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      token_file: `${dir}/ledger.token`,
      workers: 1,
      services: [{ name: "ledger", port: app.addr.port }],
      // The callee would sample everything, but the caller's "never" is the mesh's decision.
      telemetry: { otlp: otlp.url, sampling: "always" },
      access_log: { path: `${dir}/ledger-access.log` },
    });
    proxies.push(callee);
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      token_file: `${dir}/billing.token`,
      workers: 1,
      services: [{ name: "billing", port: 1 }],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
      telemetry,
      access_log: { path: `${dir}/billing-access.log`, format: "json" },
    });
    proxies.push(caller);
    for (const p of proxies) await p.child.waitLine(/tracing on/);
    const up = caller.upstreams.ledger!;
    // Sampling "never" starts no trace, but a sampled trace that comes in is continued.
    await waitFor("ledger through the mesh", async () => {
      const r = await fetch(`http://${up}/warm`);
      await r.body?.cancel();
      return r.status === 200;
    });
    const r = await fetch(`http://${up}/charge?x=1`, {
      headers: { traceparent: `00-${TRACE}-${APP_SPAN}-01`, "x-request-id": "req-42" },
    });
    assertEquals(await r.text(), "ledger says hi");

    const both = await waitFor("the client and the server span", () => {
      const mine = otlp.spans.filter((s) => s.traceId === TRACE);
      return mine.length >= 2 ? mine : null;
    });
    assertEquals(
      otlp.spans.filter((s) => s.kind === 3).length,
      1,
      "sampling never: the warm-up calls made no trace",
    );
    assertEquals(
      otlp.spans.filter((s) => s.kind === 2).length,
      1,
      "the callee started no trace of its own for calls the caller did not sample",
    );
    const client = both.find((s) => s.kind === 3)!;
    const server = both.find((s) => s.kind === 2)!;
    assert(client && server, JSON.stringify(both));
    assertEquals(client.parentSpanId, APP_SPAN);
    assertEquals(server.parentSpanId, client.spanId);
    assertEquals(attr(client, "http.request.method"), "GET");
    assertEquals(attr(client, "url.path"), "/charge");
    assertEquals(attr(client, "peer.service"), "ledger");
    assertEquals(String(attr(client, "http.response.status_code")), "200");
    assert(String(attr(client, "skein.peer.spiffe_id")).endsWith("/svc/ledger"));
    assert(String(attr(server, "skein.peer.spiffe_id")).endsWith("/svc/billing"));
    assertEquals(attr(server, "peer.service"), "billing");
    // The app sees the server span as its parent, and the caller's flag.
    assertEquals(seen.at(-1), `00-${TRACE}-${server.spanId}-01`);

    const lineOf = async (file: string, path: string) =>
      await waitFor(`${path} in ${file}`, async () => {
        const text = await Deno.readTextFile(file).catch(() => "");
        const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
        return lines.find((l) => l.path === path);
      });
    const out = await lineOf(`${dir}/billing-access.log`, "/charge");
    assertEquals(out.side, "client");
    assertEquals(out.status, 200);
    assertEquals(out.caller, "billing");
    assertEquals(out.destination, "ledger");
    assertEquals(out.trace_id, TRACE);
    assertEquals(out.request_id, "req-42");
    assertEquals(out.bytes_out, "ledger says hi".length);
    assertEquals(out.retries, 0);
    assertEquals(out.error, null);
    assert(typeof out.endpoint === "string" && typeof out.duration_ms === "number");
    const inn = await lineOf(`${dir}/ledger-access.log`, "/charge");
    assertEquals(inn.side, "server");
    assert(String(inn.caller).endsWith("/svc/billing"), inn.caller);
    assertEquals(inn.destination, "ledger");
    assertEquals(inn.trace_id, TRACE);

    // logrotate: move the file away, SIGHUP, and the next lines go to a new file.
    await Deno.rename(`${dir}/billing-access.log`, `${dir}/billing-access.log.1`);
    caller.child.proc.kill("SIGHUP");
    await waitFor("a line in the reopened access log", async () => {
      const r = await fetch(`http://${up}/after-rotate`);
      await r.body?.cancel();
      const text = await Deno.readTextFile(`${dir}/billing-access.log`).catch(() => "");
      return text.includes('"/after-rotate"');
    });
    const m = await (await fetch(`http://${caller.admin}/metrics`)).text();
    assert(/skein_access_log_lines_total\{result="written"\} [1-9]/.test(m), m);
    assert(/skein_trace_spans_total\{result="exported"\} [1-9]/.test(m), m);

    // The control node traces its API calls, continuing the caller's trace.
    const CTL_TRACE = "0af7651916cd43dd8448eb211c80319c";
    const res = await testFetch(`${cp.url}/v1/services`, {
      headers: {
        authorization: `Bearer ${cp.token}`,
        traceparent: `00-${CTL_TRACE}-${APP_SPAN}-01`,
      },
    });
    await res.body?.cancel();
    assertEquals(res.status, 200);
    const api = await waitFor("the control API's span", () => {
      return otlp.spans.find((s) => s.traceId === CTL_TRACE);
    });
    assertEquals(api.name, "GET /v1/services");
    assertEquals(api.kind, 2);
    assertEquals(api.parentSpanId, APP_SPAN);
    assertEquals(String(attr(api, "http.response.status_code")), "200");
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    await app.shutdown();
    await otlp.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a collector that is down costs dropped spans, not requests", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-observe-" });
  // A port that was bound and released: nothing listens there.
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (gone.addr as Deno.NetAddr).port;
  gone.close();
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    return new Response("ok");
  });
  const cp = await startControl(dir);
  const proxies: ProxyHandle[] = [];
  try {
    await Deno.writeTextFile(
      `${dir}/ledger.token`,
      await createJoinToken(cp.url, cp.token, "ledger"),
    );
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      token_file: `${dir}/ledger.token`,
      workers: 1,
      services: [{ name: "ledger", port: app.addr.port }],
      telemetry: { otlp: `http://127.0.0.1:${deadPort}`, sampling: "always" },
    });
    proxies.push(callee);
    await callee.child.waitLine(/tracing on/);
    // The inbound takes mTLS only: calls come through a caller proxy, which traces too.
    await Deno.writeTextFile(
      `${dir}/billing.token`,
      await createJoinToken(cp.url, cp.token, "billing"),
    );
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      token_file: `${dir}/billing.token`,
      workers: 1,
      services: [{ name: "billing", port: 1 }],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
      telemetry: { otlp: `http://127.0.0.1:${deadPort}`, sampling: "always" },
    });
    proxies.push(caller);
    await caller.child.waitLine(/tracing on/);
    const up = caller.upstreams.ledger!;
    await waitFor("ledger through the mesh", async () => {
      const r = await fetch(`http://${up}/`);
      await r.body?.cancel();
      return r.status === 200;
    });
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`http://${up}/n${i}`);
      assertEquals(await r.text(), "ok");
    }
    await waitFor("dropped spans counted", async () => {
      const m = await (await fetch(`http://${caller.admin}/metrics`)).text();
      return /skein_trace_spans_total\{result="dropped"\} [1-9]/.test(m);
    }, 60_000);
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    await app.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
