import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { feedRequest, readUntil, sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";
import { answer, answerError } from "./layer_answer.ts";
import { Done } from "./exchange.ts";
import { ProxyError } from "./types.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("answer() sends the proxy's response with its cause and counts it", opts, async () => {
  const p = await sessionPair();
  try {
    await answer(p.s, {
      status: 503,
      code: "no_endpoint",
      message: "nothing there",
      close: true,
      headOnly: false,
    });
    const text = await readUntil(p.client, (t) => t.includes("nothing there\n"));
    assert(text.startsWith("HTTP/1.1 503 "), text);
    assert(text.includes("x-skein-error: no_endpoint\r\n"), text);
    assert(text.includes("x-skein-proxy: test-node\r\n"), text);
    assertEquals(p.s.x.sentStatus, 503);
    assertEquals(p.s.f.stats.local, { 503: 1 });
  } finally {
    p.close();
  }
});

Deno.test("answerError() keeps the connection only when the request allows it", opts, async () => {
  const p = await sessionPair();
  try {
    const e = new ProxyError(404, "no_route", "no route here", "x-extra: 1\r\n");
    feedRequest(p.s, "GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    assertEquals(await answerError(p.s, e, p.s.x.head!, false), Done.KeepAlive);
    const first = await readUntil(p.client, (t) => t.includes("no route here\n"));
    assert(first.includes("x-extra: 1\r\n"), first);
    // A body left unread, or HTTP/1.0, ends the connection.
    assertEquals(await answerError(p.s, e, p.s.x.head!, true), Done.Close);
    feedRequest(p.s, "GET / HTTP/1.0\r\nhost: a\r\n\r\n");
    assertEquals(await answerError(p.s, e, p.s.x.head!, false), Done.Close);
    assertEquals(p.s.f.stats.local, { 404: 3 });
  } finally {
    p.close();
  }
});
