import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { feedRequest, readUntil, sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";
import { tryUntilAnswered } from "./layer_retry.ts";
import { Done } from "./exchange.ts";
import type { Session } from "./session.ts";
import type { Endpoint, RouteDecision } from "./types.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** An endpoint nothing listens on (a port bound, then released). */
function closedEndpoint(): Endpoint {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return { key: `127.0.0.1:${port}`, hostname: "127.0.0.1", port };
}

/** Puts `d` in the session's exchange, as the route layer would. */
function use(s: Session, d: RouteDecision): Session {
  s.x.decision = d;
  return s;
}

/** A decision over `eps` that allows `retries` retries without backoff. */
function decision(eps: Endpoint[], retries: number, picked: string[][]): RouteDecision {
  return {
    cluster: "svc",
    timeoutMs: 0,
    perTryTimeoutMs: 0,
    pick(_attempt, exclude) {
      picked.push([...exclude]);
      return eps.find((e) => !exclude.has(e.key)) ?? null;
    },
    retry: (attempt) => attempt < retries ? 0 : null,
    onResult: () => {},
  };
}

Deno.test("tryUntilAnswered() retries a refused connect on another endpoint", opts, async () => {
  const p = await sessionPair();
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const good: Endpoint = { key: `127.0.0.1:${port}`, hostname: "127.0.0.1", port };
  const served = (async () => {
    const c = await l.accept();
    await c.read(new Uint8Array(4096));
    await c.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    c.close();
  })();
  try {
    const bad = closedEndpoint();
    feedRequest(p.s, "POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n");
    p.s.x.replayable = true;
    const picked: string[][] = [];
    assertEquals(
      await tryUntilAnswered(use(p.s, decision([bad, good], 1, picked))),
      Done.KeepAlive,
    );
    assertEquals(picked, [[], [bad.key]]);
    assertEquals(p.s.f.stats.retries, 1);
    const text = await readUntil(p.client, (t) => t.endsWith("ok"));
    assert(text.startsWith("HTTP/1.1 200 OK\r\n"), text);
    await served;
  } finally {
    l.close();
    p.close();
  }
});

Deno.test("tryUntilAnswered() answers the last failure when no retry is left", opts, async () => {
  const p = await sessionPair();
  try {
    const bad = closedEndpoint();
    feedRequest(p.s, "GET /x HTTP/1.1\r\nhost: a\r\n\r\n");
    p.s.x.replayable = p.s.x.idempotent = true;
    const picked: string[][] = [];
    assertEquals(await tryUntilAnswered(use(p.s, decision([bad], 0, picked))), Done.KeepAlive);
    const text = await readUntil(p.client, (t) => t.includes("\r\n\r\n") && t.endsWith("\n"));
    assert(text.startsWith("HTTP/1.1 502 "), text);
    assert(text.includes("x-skein-error: upstream_connect_failure\r\n"), text);
    assertEquals(p.s.f.stats.retries, 0);

    // No endpoint at all: 503.
    feedRequest(p.s, "GET /x HTTP/1.1\r\nhost: a\r\n\r\n");
    p.s.x.replayable = true;
    assertEquals(await tryUntilAnswered(use(p.s, decision([], 0, []))), Done.KeepAlive);
    assertEquals(p.s.x.sentStatus, 503);
  } finally {
    p.close();
  }
});
