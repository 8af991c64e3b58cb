import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { feedRequest, readUntil, sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";
import { tryOnce } from "./layer_attempt.ts";
import { Done } from "./exchange.ts";
import type { Session } from "./session.ts";
import type { Endpoint, Outcome, RouteDecision } from "./types.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();

/** An upstream that answers each connection's first request with `reply`, then closes. */
function upstream(reply: string): { ep: Endpoint; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of l) {
      const buf = new Uint8Array(4096);
      await c.read(buf);
      if (reply !== "") await c.write(enc.encode(reply));
      c.close();
    }
  })().catch(() => {});
  const port = (l.addr as Deno.NetAddr).port;
  return { ep: { key: `127.0.0.1:${port}`, hostname: "127.0.0.1", port }, close: () => l.close() };
}

/** Puts `d` and `ep` in the session's exchange, as the route and balance layers would. */
function use(s: Session, d: RouteDecision, ep: Endpoint): Session {
  s.x.decision = d;
  s.x.ep = ep;
  return s;
}

function decision(results: Outcome[], retry: number | null = null): RouteDecision {
  return {
    cluster: "svc",
    timeoutMs: 0,
    perTryTimeoutMs: 0,
    pick: () => null,
    retry: () => retry,
    onResult: (_ep, o) => void results.push(o),
  };
}

Deno.test("tryOnce() relays the upstream's answer and reports the try", opts, async () => {
  const p = await sessionPair();
  const up = upstream("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  try {
    feedRequest(p.s, "GET /x HTTP/1.1\r\nhost: a\r\n\r\n");
    p.s.x.replayable = p.s.x.idempotent = true;
    const results: Outcome[] = [];
    assertEquals(await tryOnce(use(p.s, decision(results), up.ep)), Done.KeepAlive);
    const text = await readUntil(p.client, (t) => t.endsWith("ok"));
    assert(text.startsWith("HTTP/1.1 200 OK\r\n"), text);
    assertEquals(results, [{ kind: "response", status: 200 }]);
    assertEquals(p.s.x.sentStatus, 200);
  } finally {
    up.close();
    p.close();
  }
});

Deno.test("tryOnce() leaves a failed try's outcome in the exchange", opts, async () => {
  const p = await sessionPair();
  const up = upstream("");
  try {
    feedRequest(p.s, "GET /x HTTP/1.1\r\nhost: a\r\n\r\n");
    p.s.x.replayable = p.s.x.idempotent = true;
    const results: Outcome[] = [];
    assertEquals(await tryOnce(use(p.s, decision(results), up.ep)), null);
    assertEquals(p.s.x.outcome, { kind: "reset" });
    assert(p.s.x.sentUpstream);
    assertEquals(p.s.x.backoff, -1);
    assertEquals(results, [{ kind: "reset" }]);
    assertEquals(p.s.x.sentStatus, 0, "nothing reached the client");
  } finally {
    up.close();
    p.close();
  }
});

Deno.test("tryOnce() holds back a 5xx the retry policy wants retried", opts, async () => {
  const p = await sessionPair();
  const up = upstream("HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n");
  try {
    feedRequest(p.s, "GET /x HTTP/1.1\r\nhost: a\r\n\r\n");
    p.s.x.replayable = p.s.x.idempotent = true;
    assertEquals(await tryOnce(use(p.s, decision([], 7), up.ep)), null);
    assertEquals([p.s.x.outcome, p.s.x.backoff], [{ kind: "response", status: 503 }, 7]);
    // A POST's 5xx is the client's answer: the rule does not let it be retried.
    feedRequest(p.s, "POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n");
    p.s.x.replayable = true;
    p.s.x.idempotent = false;
    assertEquals(await tryOnce(use(p.s, decision([], 7), up.ep)), Done.KeepAlive);
    assertEquals(p.s.x.sentStatus, 503);
  } finally {
    up.close();
    p.close();
  }
});
