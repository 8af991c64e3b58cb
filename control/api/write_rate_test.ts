import assert from "node:assert/strict";
import { PROXY_WRITE_BURST, WriteRate } from "./write_rate.ts";
import { createApi } from "./app.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { parseSpiffeId } from "../../common/tls/mod.ts";

Deno.test("WriteRate allows a burst, then its rate, per key, and forgets the least recent key", () => {
  const r = new WriteRate(10, 3, 2);
  assert.deepEqual([1, 2, 3, 4].map(() => r.take("a", 0)), [true, true, true, false]);
  assert.equal(r.retryAfterMs("a", 0), 100);
  assert.equal(r.take("b", 0), true, "another key has its own bucket");
  assert.equal(r.take("a", 100), true, "one write back after 100 ms at 10/s");
  assert.equal(r.take("a", 100), false);
  assert.equal(r.refused, 2);
  r.take("c", 100);
  assert.equal(r.tracked, 2);
});

Deno.test("a proxy re-registering in a loop gets 429 too_many_writes; others still write", async () => {
  const backend = new FakeBackend();
  let now = 1_000_000;
  const app = createApi(backend, { now: () => now });
  const peer = parseSpiffeId("spiffe://skein.local/svc/web");
  assert.ok(peer);
  const proxy = { remoteAddr: { hostname: "10.0.0.9", port: 1 }, peer };
  const put = (id: string, env: unknown) =>
    app.request(
      new Request(`http://x/v1/services/web/instances/${id}`, {
        method: "PUT",
        body: JSON.stringify({ address: "10.0.0.1", port: 80 }),
      }),
      undefined,
      env as never,
    );
  const statuses = new Map<number, number>();
  // The clock does not move: the same registration, as fast as the loop goes.
  for (let i = 0; i < PROXY_WRITE_BURST + 100; i++) {
    const res = await put("w-1", proxy);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status === 429) {
      const body = await res.json();
      assert.equal(body.error.code, "too_many_writes");
      assert.ok(Number(res.headers.get("retry-after")) >= 1);
    } else await res.body?.cancel();
  }
  assert.deepEqual([...statuses.entries()].sort(), [[200, PROXY_WRITE_BURST - 1], [201, 1], [
    429,
    100,
  ]]);
  // Another proxy identity, and the operator (no peer), are not held back.
  const other = parseSpiffeId("spiffe://skein.local/svc/api");
  const otherEnv = { remoteAddr: { hostname: "10.0.0.9", port: 2 }, peer: other };
  const r2 = await app.request(
    new Request("http://x/v1/services/api/instances/a-1", {
      method: "PUT",
      body: JSON.stringify({ address: "10.0.0.2", port: 80 }),
    }),
    undefined,
    otherEnv as never,
  );
  assert.equal(r2.status, 201);
  assert.equal((await put("op-1", {})).status, 201);
  const metrics = await (await app.request("/metrics")).text();
  assert.match(metrics, /skein_control_proxy_writes_refused_total 100/);
  // Time restores the rate.
  now += 1000;
  assert.equal((await put("w-1", proxy)).status, 200);
});
