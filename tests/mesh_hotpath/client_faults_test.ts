/**
 * A client's own faults must not hold the destination's resources or count against its
 * endpoints (regressions from a review): a body that never arrives, and a client that hangs up
 * in the middle of its upload.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Outcome } from "../../mesh/forward/mod.ts";
import { forwarder, local, RawClient } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "a request body that never arrives gives its circuit-breaker slot back within the header timeout",
  opts,
  async () => {
    const up = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("ok"),
    );
    let done = 0;
    const f = forwarder(
      {
        endpoints: [local(up.addr.port)],
        timeoutMs: 200,
        perTryTimeoutMs: 100,
        onDone: () => done++,
      },
      { headerTimeoutMs: 300 },
    );
    const c = await RawClient.connect(f.addr.port);
    try {
      await c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"); // no body, ever
      // The forwarder's sweep runs once a second: bounded, not timed.
      for (let i = 0; i < 100 && done === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assertEquals(done, 1, "the slot (onDone) must come back without the client's help");
      assertEquals(await c.read(), null, "and the connection is closed");
    } finally {
      c.close();
      await f.close();
      await up.shutdown();
    }
  },
);

Deno.test("a client hanging up mid-upload is not counted against the endpoint", opts, async () => {
  const up = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer().catch(() => {});
    return new Response("ok");
  });
  const outcomes: Outcome[] = [];
  const f = forwarder({ endpoints: [local(up.addr.port)], onResult: (_e, o) => outcomes.push(o) });
  try {
    for (let i = 0; i < 5; i++) {
      const c = await RawClient.connect(f.addr.port);
      await c.send(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
      );
      await new Promise((r) => setTimeout(r, 50));
      c.close();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert(!outcomes.some((o) => o.kind === "reset"), JSON.stringify(outcomes));
    // A complete upload still reports its response.
    const c = await RawClient.connect(f.addr.port);
    await c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assertEquals((await c.read())?.status, 200);
    c.close();
    assertEquals(outcomes.at(-1), { kind: "response", status: 200 });
  } finally {
    await f.close();
    await up.shutdown();
  }
});
