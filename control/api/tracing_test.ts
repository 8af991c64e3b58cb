import { assert, assertEquals } from "../../tests/assert.ts";
import type { SpanAttributes, SpanSink } from "../../common/trace/span_sink.ts";
import type { ParentContext } from "../../common/trace/trace_context.ts";
import { createApi } from "./app.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";

interface _Made {
  kind: string;
  parent: ParentContext | null;
  attrs: SpanAttributes;
  name?: string;
  error?: boolean;
}

function fakeSink(): { sink: SpanSink; made: _Made[] } {
  const made: _Made[] = [];
  return {
    made,
    sink: {
      start(kind, _name, parent, attrs) {
        const m: _Made = { kind, parent, attrs: { ...attrs } };
        made.push(m);
        return {
          traceId: parent?.traceId ?? "1".repeat(32),
          spanId: "2".repeat(16),
          end(more, error, _end, name) {
            Object.assign(m.attrs, more);
            m.error = error;
            m.name = name;
          },
        };
      },
      stats: () => ({ exported: 0, dropped: 0 }),
      shutdown: () => Promise.resolve(),
    },
  };
}

const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

Deno.test("API calls continue a sampled caller's trace, named after the route", async () => {
  const { sink, made } = fakeSink();
  const app = createApi(new FakeBackend(), { tracing: { sink: () => sink, sampling: "never" } });
  const r = await app.request("/v1/services/ledger", { headers: { traceparent: TP } });
  await r.body?.cancel();
  assertEquals(made.length, 1);
  const s = made[0]!;
  assertEquals(s.kind, "server");
  assertEquals(s.parent?.spanId, "00f067aa0ba902b7");
  assertEquals(s.name, "GET /v1/services/:name");
  assertEquals(s.attrs["http.response.status_code"], r.status);
  // "never" starts no trace of its own, and an unsampled caller's flag is kept.
  await (await app.request("/v1/health")).body?.cancel();
  await (await app.request("/v1/health", { headers: { traceparent: TP.slice(0, -2) + "00" } }))
    .body?.cancel();
  assertEquals(made.length, 1);
});

Deno.test("API tracing with always samples every call; nothing before the tracer loads", async () => {
  const { sink, made } = fakeSink();
  let loaded: SpanSink | null = null;
  const app = createApi(new FakeBackend(), { tracing: { sink: () => loaded, sampling: "always" } });
  await (await app.request("/v1/health")).body?.cancel();
  assertEquals(made.length, 0);
  loaded = sink;
  await (await app.request("/v1/health")).body?.cancel();
  assertEquals(made.length, 1);
  assertEquals(made[0]!.parent, null);
  assert(made[0]!.error === false);
});
