import { assertEquals } from "../../tests/assert.ts";
import { notStartedResult } from "./plane_change.ts";
import type { UpstreamConfig } from "../../config/proxy_reload.ts";

Deno.test("a worker that never started fails each added upstream under its own key", () => {
  const add = [
    { service: "ledger", listen: { hostname: "127.0.0.1", port: 0 } },
    { service: "ledger", caller: "billing", listen: { hostname: "127.0.0.1", port: 0 } },
  ] as unknown as UpstreamConfig[];
  const r = notStartedResult({
    add,
    remove: [],
    ports: {},
    locals: null,
    limits: null,
    drainMs: 0,
  });
  assertEquals(r.failed.map((f) => f.key), ["ledger", "ledger@billing"]);
  assertEquals(r.opened, {});
});
