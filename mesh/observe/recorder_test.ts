import { assert, assertEquals } from "../../tests/assert.ts";

const assertStrictEquals = (a: unknown, b: unknown) => assert(a === b, "not the same object");
import { nullLogger } from "../../common/log.ts";
import type { SpanSink } from "../../common/trace/span_sink.ts";
import type { ParentContext } from "../../common/trace/trace_context.ts";
import { parseRequestHead } from "../http1/mod.ts";
import type { Endpoint, Outcome, RouteDecision } from "../forward/types.ts";
import { AccessLog } from "./access_log.ts";
import { type CallResolver, Recorder } from "./recorder.ts";

const enc = new TextEncoder();
function head(extra = "") {
  const b = enc.encode(`GET /charge?x=1 HTTP/1.1\r\nhost: ledger\r\n${extra}\r\n`);
  return parseRequestHead(b, 0, b.length, {
    maxHeadBytes: 65536,
    maxHeaderCount: 100,
    maxBodyBytes: 1 << 20,
  });
}

function decision(): RouteDecision & { done: number[] } {
  const done: number[] = [];
  return {
    done,
    cluster: "ledger",
    timeoutMs: 0,
    perTryTimeoutMs: 0,
    pick: () => ({ key: "10.0.0.5:15443", hostname: "10.0.0.5", port: 15443 }),
    retry: () => null,
    onResult: () => {},
    onDone: (s) => done.push(s),
  };
}

const calls: CallResolver = {
  callInfo: () => ({
    caller: "billing",
    destination: "ledger",
    peerService: "ledger",
    peerIdentity: "spiffe://td/svc/ledger",
  }),
};
const OUT = { name: "upstream:ledger", protocol: "http" as const };

function sink(): { sink: SpanSink; parents: (ParentContext | null)[]; ended: number } {
  const st = { parents: [] as (ParentContext | null)[], ended: 0 };
  return {
    get parents() {
      return st.parents;
    },
    get ended() {
      return st.ended;
    },
    sink: {
      start(_k, _n, parent) {
        st.parents.push(parent);
        return {
          traceId: parent?.traceId ?? "a".repeat(32),
          spanId: "b".repeat(16),
          end: () => void st.ended++,
        };
      },
      stats: () => ({ exported: 0, dropped: 0 }),
      shutdown: () => Promise.resolve(),
    },
  };
}

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";

Deno.test("Recorder leaves an unsampled request's decision and traceparent untouched", () => {
  const s = sink();
  const rec = new Recorder({
    node: "n",
    sampling: 0.01,
    sink: s.sink,
    accessLog: null,
    random: () => 0.5,
  });
  const d = decision();
  const h = head(`traceparent: 00-${TRACE}-00f067aa0ba902b7-00\r\n`);
  assertStrictEquals(rec.record(d, h, OUT, undefined, calls), d);
  assertStrictEquals(rec.record(d, head(), OUT, undefined, calls), d);
  assertEquals(s.parents.length, 0);
  assertEquals(h.hasHopByHop, false, "the caller's traceparent goes on as is");
});

Deno.test("Recorder on the inbound starts no trace of its own: the calling proxy drew the sampling", () => {
  const s = sink();
  const rec = new Recorder({
    node: "n",
    sampling: "always",
    sink: s.sink,
    accessLog: null,
    random: () => 0,
  });
  const IN = { name: "inbound", protocol: "http" as const };
  const d = decision();
  assertStrictEquals(rec.record(d, head(), IN, undefined, calls), d);
  assertStrictEquals(
    rec.record(d, head("x-b3-traceid: " + TRACE + "\r\n"), IN, undefined, calls),
    d,
  );
  assertEquals(s.parents.length, 0, "no context came in, so the caller did not sample");
  // A sampled context from the caller is still continued, and the outbound still starts roots.
  rec.record(
    decision(),
    head(`traceparent: 00-${TRACE}-00f067aa0ba902b7-01\r\n`),
    IN,
    undefined,
    calls,
  );
  rec.record(decision(), head(), OUT, undefined, calls);
  assertEquals(s.parents.map((p) => p?.traceId ?? null), [TRACE, null]);
});

Deno.test("Recorder continues a sampled trace (W3C or B3) and sends its span as the parent", () => {
  const s = sink();
  const rec = new Recorder({ node: "n", sampling: "never", sink: s.sink, accessLog: null });
  const d = decision();
  const h = head(`traceparent: 00-${TRACE}-00f067aa0ba902b7-01\r\n`);
  const w = rec.record(d, h, OUT, undefined, calls) as RouteDecision;
  assert(w !== d);
  assertEquals(w.extraRequestHeaders, `traceparent: 00-${TRACE}-${"b".repeat(16)}-01\r\n`);
  assertEquals(h.hasHopByHop, true, "the old traceparent is dropped");
  assertEquals(s.parents[0]?.spanId, "00f067aa0ba902b7");
  w.onDone!(200, 5);
  assertEquals(s.ended, 1);
  assertEquals(d.done, [200]);
  const b3 = head(`x-b3-traceid: ${TRACE}\r\nx-b3-spanid: 00f067aa0ba902b7\r\nx-b3-sampled: 1\r\n`);
  rec.record(decision(), b3, OUT, undefined, calls);
  assertEquals(s.parents[1]?.traceId, TRACE);
});

Deno.test("Recorder writes one access line per request with the trace id", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new AccessLog(`${dir}/a.log`, { logger: nullLogger });
    let t = 1000;
    const rec = new Recorder({
      node: "n",
      sampling: "never",
      sink: null,
      accessLog: log,
      now: () => t,
    });
    const d = decision();
    const w = rec.record(
      d,
      head(`traceparent: 00-${TRACE}-00f067aa0ba902b7-00\r\nx-request-id: r1\r\n`),
      OUT,
      undefined,
      calls,
    ) as RouteDecision;
    w.onResult({ key: "10.0.0.5:15443", hostname: "10.0.0.5", port: 15443 }, { kind: "reset" }, 1);
    w.onResult({ key: "10.0.0.6:15443", hostname: "10.0.0.6", port: 15443 }, {
      kind: "response",
      status: 200,
    }, 1);
    t = 1012;
    w.onDone!(200, 42);
    await log.close();
    const line = JSON.parse(await Deno.readTextFile(`${dir}/a.log`));
    assertEquals(line, {
      type: "http",
      node: "n",
      side: "client",
      start: new Date(1000).toISOString(),
      method: "GET",
      path: "/charge",
      authority: "ledger",
      bytes_in: 0,
      caller: "billing",
      destination: "ledger",
      trace_id: TRACE,
      request_id: "r1",
      duration_ms: 12,
      status: 200,
      bytes_out: 42,
      endpoint: "10.0.0.6:15443",
      retries: 1,
      error: null,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Recorder writes one access line per opaque TCP connection", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new AccessLog(`${dir}/a.log`, { logger: nullLogger });
    let t = 5000;
    const rec = new Recorder({
      node: "n",
      sampling: "never",
      sink: null,
      accessLog: log,
      now: () => t,
    });
    const d = decision();
    const w = rec.wrapTcp(d, "billing");
    w.onResult({ key: "10.0.0.5:15443", hostname: "10.0.0.5", port: 15443 }, {
      kind: "connect_failure",
    }, 1);
    w.onResult({ key: "10.0.0.6:15443", hostname: "10.0.0.6", port: 15443 }, {
      kind: "response",
      status: 200,
    }, 1);
    t = 5250;
    w.onDone!(200, 300, 100);
    await log.close();
    const line = JSON.parse(await Deno.readTextFile(`${dir}/a.log`));
    assertEquals(line, {
      type: "tcp",
      node: "n",
      side: "client",
      start: new Date(5000).toISOString(),
      duration_ms: 250,
      status: 200,
      bytes_in: 100,
      bytes_out: 300,
      caller: "billing",
      destination: "ledger",
      endpoint: "10.0.0.6:15443",
      retries: 1,
      error: null,
    });
    assertEquals(d.done, [200]);
    // Without an access log the decision is not wrapped at all.
    const bare = new Recorder({ node: "n", sampling: 0.01, sink: null, accessLog: null });
    assertStrictEquals(bare.wrapTcp(d, "billing"), d);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Recorder's wrapper forwards mirror, delay, subset, re-checks and per-pick headers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new AccessLog(`${dir}/a.log`, { logger: nullLogger });
    const s = sink();
    const rec = new Recorder({ node: "n", sampling: "always", sink: s.sink, accessLog: log });
    const d = decision();
    const mirror = { cluster: "ledger-shadow" } as unknown as NonNullable<RouteDecision["mirror"]>;
    let allowed = true;
    const bytes: number[] = [];
    Object.assign(d, {
      subset: "v2",
      mirror,
      delayMs: 250,
      stillAllowed: () => allowed,
      extraRequestHeaders: "x-skein-destination: ledger\r\n",
      onDone: (st: number, out = 0, inn = 0) => bytes.push(st, out, inn),
    });
    const w = rec.record(d, head(), OUT, undefined, calls) as RouteDecision;
    assert(w !== d);
    assertEquals(w.subset, "v2");
    assertStrictEquals(w.mirror, mirror);
    assertEquals(w.delayMs, 250);
    assertEquals(w.stillAllowed?.(), true);
    allowed = false;
    assertEquals(w.stillAllowed?.(), false, "the re-check asks the wrapped decision");
    const tp = `traceparent: 00-${"a".repeat(32)}-${"b".repeat(16)}-01\r\n`;
    assertEquals(w.extraRequestHeaders, `x-skein-destination: ledger\r\n${tp}`);
    // Capability routing sets the header per endpoint when it picks.
    d.extraRequestHeaders = "x-skein-destination: ledger@10.0.0.7:15443\r\n";
    assertEquals(w.extraRequestHeaders, `x-skein-destination: ledger@10.0.0.7:15443\r\n${tp}`);
    w.onDone!(200, 7, 3);
    assertEquals(bytes, [200, 7, 3]);
    await log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Recorder's wrapper without a span passes the wrapped decision's headers as they are", () => {
  const rec = new Recorder({
    node: "n",
    sampling: "never",
    sink: null,
    accessLog: { write: () => {} } as unknown as AccessLog,
  });
  const d = decision();
  const w = rec.record(d, head(), OUT, undefined, calls) as RouteDecision;
  assert(w !== d);
  assertEquals(w.extraRequestHeaders, undefined);
  assertEquals(w.subset, undefined);
  assertEquals(w.mirror, undefined);
  assertEquals(w.delayMs, undefined);
  assertEquals(w.stillAllowed, undefined);
  d.extraRequestHeaders = "x-skein-destination: a\r\n";
  assertEquals(w.extraRequestHeaders, "x-skein-destination: a\r\n");
});

/** A decision that tracks its tries and reports a recorded end itself, as `Decision` does. */
function trackingDecision(): RouteDecision & { done: number[] } {
  const done: number[] = [];
  let tries = 0;
  let lastEp: Endpoint | null = null;
  let last: Outcome | null = null;
  const d: RouteDecision & { done: number[] } = {
    done,
    cluster: "ledger",
    timeoutMs: 0,
    perTryTimeoutMs: 0,
    recording: null,
    pick: () => ({ key: "10.0.0.5:15443", hostname: "10.0.0.5", port: 15443 }),
    retry: () => null,
    onResult: (ep, o) => {
      tries++;
      lastEp = ep;
      last = o;
    },
    onDone: (s, out = 0, inn) => {
      done.push(s);
      d.recording?.done(s, out, inn, tries, lastEp, last);
    },
  };
  return d;
}

Deno.test("a decision that reports its own end is recorded without a wrapper, to the same line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new AccessLog(`${dir}/a.log`, { logger: nullLogger });
    let t = 1000;
    const rec = new Recorder({
      node: "n",
      sampling: "never",
      sink: null,
      accessLog: log,
      now: () => t,
    });
    const d = trackingDecision();
    const h = head(`x-request-id: r1\r\n`);
    assertStrictEquals(rec.record(d, h, OUT, undefined, calls), d);
    assert(d.recording !== null, "the record layer set its hook");
    d.onResult({ key: "10.0.0.5:15443", hostname: "10.0.0.5", port: 15443 }, { kind: "reset" }, 1);
    d.onResult(
      { key: "10.0.0.6:15443", hostname: "10.0.0.6", port: 15443 },
      { kind: "timeout" },
      1,
    );
    t = 1030;
    d.onDone!(504, 0);
    await log.close();
    assertEquals(JSON.parse(await Deno.readTextFile(`${dir}/a.log`)), {
      type: "http",
      node: "n",
      side: "client",
      start: new Date(1000).toISOString(),
      method: "GET",
      path: "/charge",
      authority: "ledger",
      bytes_in: 0,
      caller: "billing",
      destination: "ledger",
      trace_id: null,
      request_id: "r1",
      duration_ms: 30,
      status: 504,
      bytes_out: 0,
      endpoint: "10.0.0.6:15443",
      retries: 1,
      error: "upstream_timeout",
    });
    assertEquals(d.done, [504]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sampled request is still wrapped (its trace header and span), and its line written once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new AccessLog(`${dir}/a.log`, { logger: nullLogger });
    const s = sink();
    const rec = new Recorder({ node: "n", sampling: "always", sink: s.sink, accessLog: log });
    const d = trackingDecision();
    const w = rec.record(d, head(), OUT, undefined, calls) as RouteDecision;
    assert(w !== d);
    assertEquals(d.recording, null);
    w.onDone!(200, 1);
    await log.close();
    const lines = (await Deno.readTextFile(`${dir}/a.log`)).trim().split("\n");
    assertEquals(lines.length, 1);
    assertEquals(s.ended, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sampled request on a decision that takes header lines is hooked, not wrapped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new AccessLog(`${dir}/a.log`, { logger: nullLogger });
    const s = sink();
    const rec = new Recorder({ node: "n", sampling: "always", sink: s.sink, accessLog: log });
    const added: string[] = [];
    const d = { ...trackingDecision(), addRequestHeader: (l: string) => void added.push(l) };
    // The spread copied the hook's closure over the original object: report through this one.
    d.onDone = (st, out = 0, inn) => {
      d.done.push(st);
      d.recording?.done(st, out, inn, 1, null, { kind: "response", status: st });
    };
    const h = head(`traceparent: 00-${TRACE}-00f067aa0ba902b7-01\r\n`);
    assertStrictEquals(rec.record(d, h, OUT, undefined, calls), d);
    assertEquals(added, [`traceparent: 00-${TRACE}-${"b".repeat(16)}-01\r\n`]);
    assertEquals(h.hasHopByHop, true, "the caller's traceparent is replaced");
    d.onDone!(200, 3);
    await log.close();
    const lines = (await Deno.readTextFile(`${dir}/a.log`)).trim().split("\n");
    assertEquals(lines.length, 1);
    assertEquals(JSON.parse(lines[0]!).trace_id, TRACE);
    assertEquals(s.ended, 1);
    assertEquals(d.done, [200]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
