import {
  deepStrictEqual as assertEquals,
  strictEqual as assertStrictEquals,
} from "node:assert/strict";
import { feedRequest, sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";
import { faultDelay, route } from "./layer_route.ts";
import { ProxyError } from "./types.ts";
import type { RequestHead } from "../http1/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("route() asks the router with the listener and the client", opts, async () => {
  const seen: [RequestHead, string, string | null][] = [];
  const no = new ProxyError(404, "no_route", "none");
  const p = await sessionPair({
    router: {
      route(head, listener, client) {
        seen.push([head, listener.name, client.address]);
        return no;
      },
    },
  });
  try {
    feedRequest(p.s, "GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    assertStrictEquals(route(p.s, p.s.x.head!), no);
    assertEquals(seen.length, 1);
    assertStrictEquals(seen[0]![0], p.s.x.head);
    assertEquals([seen[0]![1], seen[0]![2]], ["test", "127.0.0.1"]);
  } finally {
    p.close();
  }
});

Deno.test("faultDelay() ends early when the session is aborted", opts, async () => {
  const p = await sessionPair();
  try {
    // An hour: the test only ends because the abort cuts the wait short.
    const waiting = faultDelay(p.s, 3_600_000);
    p.s.abort();
    await waiting;
    assertEquals(p.s.endDelay, null);
  } finally {
    p.close();
  }
});
