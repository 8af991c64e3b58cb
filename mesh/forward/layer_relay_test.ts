import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseResponseHead } from "../http1/mod.ts";
import { feedRequest, readUntil, sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";
import { COALESCE_BYTES, countBody, endRelay, startWholeResponse } from "./layer_relay.ts";
import { Done } from "./exchange.ts";
import type { UpstreamConn } from "./pool.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** An upstream connection holding `raw` in its buffer, and the head parsed from it. */
function upstream(raw: string) {
  const buf = new TextEncoder().encode(raw);
  const end = raw.indexOf("\r\n\r\n") + 4;
  const uc = { buf } as unknown as UpstreamConn;
  return { uc, res: parseResponseHead(buf, 0, end), start: end, filled: buf.length };
}

Deno.test("startWholeResponse() takes a response whose body came with its head", opts, async () => {
  const p = await sessionPair();
  try {
    feedRequest(p.s, "GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    const u = upstream("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi");
    assertEquals(startWholeResponse(p.s, u.uc, u.res, u.start, u.filled), 2);
    assertEquals(p.s.x.sentStatus, 200);
    assert(p.s.x.reuseUpstream && !p.s.x.closeClient);
    await p.s.conn.write(p.s.out.view());
    countBody(p.s, 2);
    const text = await readUntil(p.client, (t) => t.endsWith("\r\n\r\nhi"));
    assert(text.startsWith("HTTP/1.1 200 OK\r\n"), text);
    assertEquals([p.s.x.bodyOut, p.s.f.stats.responseBodyBytes], [2, 2]);
  } finally {
    p.close();
  }
});

Deno.test(
  "startWholeResponse() leaves partial, chunked and large bodies to stream",
  opts,
  async () => {
    const p = await sessionPair();
    try {
      feedRequest(p.s, "GET / HTTP/1.1\r\nhost: a\r\n\r\n");
      const partial = upstream("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhi");
      assertEquals(
        startWholeResponse(p.s, partial.uc, partial.res, partial.start, partial.filled),
        -1,
      );
      const chunked = upstream("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n");
      assertEquals(
        startWholeResponse(p.s, chunked.uc, chunked.res, chunked.start, chunked.filled),
        -1,
      );
      const big = "x".repeat(COALESCE_BYTES + 1);
      const large = upstream(`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n${big}`);
      assertEquals(startWholeResponse(p.s, large.uc, large.res, large.start, large.filled), -1);
      assertEquals(p.s.x.sentStatus, 0, "nothing was written for the client");
    } finally {
      p.close();
    }
  },
);

Deno.test(
  "a whole response with bytes beyond its body does not go back to the pool",
  opts,
  async () => {
    const p = await sessionPair();
    try {
      feedRequest(p.s, "GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
      const u = upstream("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n");
      assertEquals(startWholeResponse(p.s, u.uc, u.res, u.start, u.filled), 0);
      assert(!p.s.x.reuseUpstream, "the upstream connection is out of step");
      assert(p.s.x.closeClient, "the client asked to close");
      const released: unknown[] = [], discarded: unknown[] = [];
      const pool = p.s.f.upstreams;
      pool.release = (c) => void released.push(c);
      pool.discard = (c) => void discarded.push(c);
      assertEquals(endRelay(p.s, u.uc, true), Done.Close);
      assertEquals([released.length, discarded.length], [0, 1]);
    } finally {
      p.close();
    }
  },
);
