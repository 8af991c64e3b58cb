import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { feedRequest, sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";
import { DEFAULT_HEAD_LIMITS, parseRequestHead } from "../http1/mod.ts";
import { bufferable, bufferBody, bufferedBody } from "./layer_request_body.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("bufferable() takes only small fixed-length bodies without Expect", () => {
  const table: [string, boolean][] = [
    ["content-length: 10", true],
    ["content-length: 64", true],
    ["content-length: 65", false],
    ["content-length: 0", false],
    ["transfer-encoding: chunked", false],
    ["content-length: 10\r\nexpect: 100-continue", false],
  ];
  for (const [fields, want] of table) {
    const raw = `POST / HTTP/1.1\r\nhost: a\r\n${fields}\r\n\r\n`;
    const b = new TextEncoder().encode(raw);
    assertEquals(
      bufferable(parseRequestHead(b, 0, b.length, DEFAULT_HEAD_LIMITS), 64),
      want,
      fields,
    );
  }
});

Deno.test("bufferBody() answers at once when the body is in the buffer", opts, async () => {
  const p = await sessionPair();
  try {
    feedRequest(p.s, "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello");
    assertEquals(bufferBody(p.s), true);
    assert(p.s.x.replayable);
    assertEquals(new TextDecoder().decode(bufferedBody(p.s)!), "hello");
  } finally {
    p.close();
  }
});

Deno.test(
  "bufferBody() waits for the rest of the body, or says the client left",
  opts,
  async () => {
    const p = await sessionPair();
    try {
      feedRequest(p.s, "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\nhello");
      const waiting = bufferBody(p.s);
      assert(waiting instanceof Promise);
      assert(p.s.waitingBody, "the header-read deadline must bound the wait");
      await p.client.write(new TextEncoder().encode("world"));
      assertEquals(await waiting, true);
      assert(!p.s.waitingBody);
      assertEquals(new TextDecoder().decode(bufferedBody(p.s)!), "helloworld");

      feedRequest(p.s, "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\nhello");
      const gone = bufferBody(p.s);
      p.client.close();
      assertEquals(await gone, false);
      assert(!p.s.x.replayable);
    } finally {
      p.close();
    }
  },
);

Deno.test("bufferBody() leaves chunked and large bodies to stream", opts, async () => {
  const p = await sessionPair({ maxRetryBodyBytes: 4 });
  try {
    feedRequest(p.s, "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n");
    assertEquals(bufferBody(p.s), true);
    assertEquals([p.s.x.replayable, bufferedBody(p.s)], [false, null]);
    feedRequest(p.s, "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello");
    assertEquals(bufferBody(p.s), true);
    assert(!p.s.x.replayable);
  } finally {
    p.close();
  }
});
