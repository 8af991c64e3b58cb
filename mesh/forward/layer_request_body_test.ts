import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { feedRequest, sessionPair } from "../../tests/mesh_hotpath/session_pair.ts";
import { bufferable, bufferBody, bufferedBody } from "./layer_request_body.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("bufferable() takes only small fixed-length bodies without Expect", () => {
  assertEquals(bufferable(false, 10, false, 64), true);
  assertEquals(bufferable(false, 64, false, 64), true);
  assertEquals(bufferable(false, 65, false, 64), false);
  assertEquals(bufferable(true, 0, false, 64), false);
  assertEquals(bufferable(false, 0, false, 64), false);
  assertEquals(bufferable(false, 10, true, 64), false);
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
