import { assert, assertEquals } from "../../tests/assert.ts";
import { createOtlpSink, tracesUrl } from "./otlp_sink.ts";

interface Posted {
  url: string;
  body: {
    resourceSpans: {
      resource: { attributes: { key: string; value: Record<string, unknown> }[] };
      scopeSpans: {
        spans: {
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          kind: number;
          startTimeUnixNano: string;
          endTimeUnixNano: string;
          attributes: { key: string; value: Record<string, unknown> }[];
          status: { code?: number };
        }[];
      }[];
    }[];
  };
}

/** A post function that records bodies and answers as told. */
function recorder(answer: () => Promise<boolean> = () => Promise.resolve(true)) {
  const posted: Posted[] = [];
  const post = (url: string, body: string) => {
    posted.push({ url, body: JSON.parse(body) });
    return answer();
  };
  return { posted, post };
}

Deno.test("the collector URL gets /v1/traces once", () => {
  assertEquals(tracesUrl("http://c:4318"), "http://c:4318/v1/traces");
  assertEquals(tracesUrl("http://c:4318/"), "http://c:4318/v1/traces");
  assertEquals(tracesUrl("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
});

Deno.test("spans export as OTLP/JSON with parent links, kinds, typed attributes and status", async () => {
  const r = recorder();
  const sink = createOtlpSink({
    endpoint: "http://c:4318",
    serviceName: "billing",
    resource: { "skein.node": "vm-1" },
    post: r.post,
  });
  const root = sink.start("client", "GET ledger", null, { "url.path": "/x" }, 1_000);
  assert(/^[0-9a-f]{32}$/.test(root.traceId) && /^[0-9a-f]{16}$/.test(root.spanId));
  const child = sink.start(
    "server",
    "GET ledger",
    { traceId: root.traceId, spanId: root.spanId, sampled: true, traceState: null },
    {},
    1_000.5,
  );
  assertEquals(child.traceId, root.traceId);
  child.end({ "http.response.status_code": 503, error: true, ratio: 0.5 }, true, 1_002.25);
  root.end({ "http.response.status_code": 200 }, false, 1_003, "GET ledger /x");
  root.end({}, false, 9_999); // a second end is ignored
  await sink.shutdown();
  assertEquals(r.posted.length, 1);
  assertEquals(r.posted[0]!.url, "http://c:4318/v1/traces");
  const rs = r.posted[0]!.body.resourceSpans[0]!;
  assertEquals(rs.resource.attributes, [
    { key: "service.name", value: { stringValue: "billing" } },
    { key: "skein.node", value: { stringValue: "vm-1" } },
  ]);
  const [s, c] = [rs.scopeSpans[0]!.spans[1]!, rs.scopeSpans[0]!.spans[0]!];
  assertEquals(s.name, "GET ledger /x");
  assertEquals(s.kind, 3);
  assertEquals(s.parentSpanId, undefined);
  assertEquals(s.startTimeUnixNano, "1000000000");
  assertEquals(s.endTimeUnixNano, "1003000000");
  assertEquals(s.status, {});
  assertEquals(s.attributes, [
    { key: "url.path", value: { stringValue: "/x" } },
    { key: "http.response.status_code", value: { intValue: 200 } },
  ]);
  assertEquals(c.kind, 2);
  assertEquals(c.parentSpanId, root.spanId);
  assertEquals(c.startTimeUnixNano, "1000500000");
  assertEquals(c.endTimeUnixNano, "1002250000");
  assertEquals(c.status, { code: 2 });
  assertEquals(c.attributes, [
    { key: "http.response.status_code", value: { intValue: 503 } },
    { key: "error", value: { boolValue: true } },
    { key: "ratio", value: { doubleValue: 0.5 } },
  ]);
  assertEquals(sink.stats(), { exported: 2, dropped: 0 });
});

Deno.test("a collector that hangs costs dropped spans beyond the queue, counted, and one export at a time", async () => {
  let release!: (ok: boolean) => void;
  const hang = new Promise<boolean>((res) => release = res);
  const r = recorder(() => hang);
  const sink = createOtlpSink({
    endpoint: "http://c:4318",
    serviceName: "s",
    post: r.post,
    maxQueue: 4,
    maxBatch: 2,
  });
  const end = () => sink.start("client", "n", null, {}, 0).end({}, false, 1);
  end();
  end(); // a full batch: the export starts and hangs
  for (let i = 0; i < 6; i++) end(); // 4 queue, 2 dropped
  assertEquals(r.posted.length, 1);
  assertEquals(sink.stats(), { exported: 0, dropped: 2 });
  release(true);
  await sink.shutdown();
  assertEquals(sink.stats(), { exported: 6, dropped: 2 });
  end(); // after shutdown: dropped, never queued
  assertEquals(sink.stats().dropped, 3);
});

Deno.test("a failed export drops its batch and counts it", async () => {
  const r = recorder(() => Promise.resolve(false));
  const sink = createOtlpSink({ endpoint: "http://c:4318", serviceName: "s", post: r.post });
  sink.start("server", "n", null, {}, 0).end({}, false, 1);
  await sink.shutdown();
  assertEquals(sink.stats(), { exported: 0, dropped: 1 });
});

Deno.test("the default post reaches a real OTLP/HTTP receiver, and a refused one counts as dropped", async () => {
  const got: unknown[] = [];
  let status = 200;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    got.push(await req.json());
    return new Response("{}", { status });
  });
  try {
    const url = `http://127.0.0.1:${server.addr.port}`;
    const ok = createOtlpSink({ endpoint: url, serviceName: "s" });
    ok.start("client", "n", null, {}, 0).end({}, false, 1);
    await ok.shutdown();
    assertEquals(ok.stats(), { exported: 1, dropped: 0 });
    status = 503;
    const refused = createOtlpSink({ endpoint: url, serviceName: "s" });
    refused.start("client", "n", null, {}, 0).end({}, false, 1);
    await refused.shutdown();
    assertEquals(refused.stats(), { exported: 0, dropped: 1 });
    assertEquals(got.length, 2);
  } finally {
    await server.shutdown();
  }
});

Deno.test("after a failed export, a collector still down gets an empty probe, not the next batch", async () => {
  let up = false;
  const r = recorder(() => Promise.resolve(up));
  const s2 = createOtlpSink({
    endpoint: "http://c:4318",
    serviceName: "s",
    post: r.post,
    exportDelayMs: 1,
  });
  const end2 = () => s2.start("client", "n", null, {}, 0).end({}, false, 1);
  end2();
  await waitFor(() => s2.stats().dropped === 1);
  assertEquals(
    r.posted.map((p) => p.body.resourceSpans.length),
    [1],
    "the first try sends the batch",
  );
  end2();
  await waitFor(() => s2.stats().dropped === 2);
  assertEquals(r.posted.map((p) => p.body.resourceSpans.length), [1, 0], "then only a probe");
  up = true;
  end2();
  await waitFor(() => s2.stats().exported === 1);
  assertEquals(r.posted.map((p) => p.body.resourceSpans.length), [1, 0, 0, 1]);
  await s2.shutdown();
  assertEquals(s2.stats(), { exported: 1, dropped: 2 });
});

/** Waits until `cond` holds, polling, at most about 10 s. */
async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assertEquals(cond(), true, "condition not reached");
}
