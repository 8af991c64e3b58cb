import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { RequestHead } from "../../mesh/http1/mod.ts";
import type { ClientInfo, Endpoint, ListenerInfo } from "../../mesh/forward/mod.ts";
import { staticRouter } from "./static_router.ts";

const LISTENER: ListenerInfo = { name: "l", protocol: "http" };
const CLIENT: ClientInfo = { address: "127.0.0.1", port: 1, identity: null };

Deno.test("staticRouter() round-robins, skips excluded endpoints and bounds retries", () => {
  const eps: Endpoint[] = ["a", "b", "c"].map((k, i) => ({ key: k, hostname: "h", port: i + 1 }));
  const r = staticRouter({ endpoints: eps, retries: 1 });
  const d = r.route({} as RequestHead, LISTENER, CLIENT);
  if (!("pick" in d)) throw new Error("expected a decision");
  assertEquals([d.pick(0, new Set())?.key, d.pick(0, new Set())?.key], ["a", "b"]);
  assertEquals(d.pick(1, new Set(["c"]))?.key, "a");
  assertEquals(d.retry(0, { kind: "reset" }), 0);
  assertEquals(d.retry(1, { kind: "reset" }), null);
  assertEquals(d.retry(0, { kind: "response", status: 404 }), null);
  const none = staticRouter({ endpoints: [] }).route({} as RequestHead, LISTENER, CLIENT);
  assert(!("pick" in none));
  assertEquals(none.status, 503);
});
