import {
  deepStrictEqual as assertEquals,
  ok as assert,
  strictEqual as assertStrictEquals,
} from "node:assert/strict";
import { DEFAULT_HEAD_LIMITS, parseRequestHead } from "../http1/mod.ts";
import { Exchange } from "./exchange.ts";
import type { UpstreamConn } from "./pool.ts";

function head(raw: string) {
  const b = new TextEncoder().encode(raw);
  return parseRequestHead(b, 0, b.length, DEFAULT_HEAD_LIMITS);
}

Deno.test("Exchange.begin() clears what the last request on the connection left", () => {
  const discarded: UpstreamConn[] = [];
  const x = new Exchange({ discard: (c: UpstreamConn) => void discarded.push(c) });
  x.begin(head("GET /a HTTP/1.1\r\nhost: a\r\n\r\n"));
  x.attempt = 3;
  x.exclude = new Set(["e1"]);
  x.outcome = { kind: "reset" };
  x.sentUpstream = true;
  x.backoff = 25;
  x.fresh = true;
  x.sentStatus = 200;
  x.bodyOut = 12;
  const next = head("GET /b HTTP/1.1\r\nhost: a\r\n\r\n");
  x.begin(next);
  assertStrictEquals(x.head, next);
  assertEquals(
    [x.attempt, x.exclude, x.outcome, x.sentUpstream, x.backoff, x.fresh],
    [0, null, null, false, -1, false],
  );
  assertEquals([x.sentStatus, x.bodyOut], [0, 0]);
});

Deno.test("Exchange.fire() marks the try timed out and gives up its upstream connection", () => {
  const discarded: unknown[] = [];
  const x = new Exchange({ discard: (c: UpstreamConn) => void discarded.push(c) });
  x.fire();
  assert(x.timedOut);
  assertEquals(discarded, []);
  const uc = {} as UpstreamConn;
  x.tryConn = uc;
  x.fire();
  assertStrictEquals(discarded[0], uc);
});

Deno.test("Exchange.end() lets go of the request's objects", () => {
  const x = new Exchange({ discard: () => {} });
  x.begin(head("GET /a HTTP/1.1\r\nhost: a\r\n\r\n"));
  x.ep = { key: "a:1", hostname: "a", port: 1 };
  x.exclude = new Set(["a:1"]);
  x.outcome = { kind: "reset" };
  x.end();
  assertEquals([x.head, x.decision, x.ep, x.exclude, x.outcome, x.bodyError], [
    null,
    null,
    null,
    null,
    null,
    null,
  ]);
});
