import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { nullLogger } from "../../common/log.ts";
import {
  DEFAULT_KEEP_ALIVE_IDLE_MS,
  DEFAULT_MAX_RETRY_BODY_BYTES,
  newForwarderStats,
  withDefaults,
} from "./context.ts";
import { ConnectionPool } from "./pool.ts";
import { ProxyError } from "./types.ts";

Deno.test("withDefaults() fills in what is not given, keeps what is, and leaves the pool out", () => {
  const pool = new ConnectionPool();
  try {
    const o = withDefaults({
      node: "n",
      listener: { name: "l", protocol: "http" },
      router: { route: () => new ProxyError(404, "no_route", "none") },
      logger: nullLogger,
      pool,
      maxRetryBodyBytes: 10,
    });
    assertEquals(o.maxRetryBodyBytes, 10);
    assert(DEFAULT_MAX_RETRY_BODY_BYTES !== 10);
    assertEquals(o.keepAliveIdleMs, DEFAULT_KEEP_ALIVE_IDLE_MS);
    assertEquals([o.forwardedFor, o.callerHeader], [true, false]);
    assert(!("pool" in o));
  } finally {
    pool.close();
  }
});

Deno.test("newForwarderStats() starts every counter at zero, each time a new object", () => {
  const a = newForwarderStats();
  a.requests++;
  a.local[503] = 1;
  assertEquals(newForwarderStats(), {
    accepted: 0,
    active: 0,
    requests: 0,
    local: {},
    retries: 0,
    refused: 0,
    requestBodyBytes: 0,
    responseBodyBytes: 0,
  });
});
