/**
 * A control plane under load from one address: a fleet's proxies behind one NAT address keep
 * their connections and watches past the per-address caps (which stay for anonymous clients),
 * and a cluster driven hard by one client still elects a new leader that takes writes after the
 * old one is killed.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { ProcessCluster, request, waitFor } from "./cluster.ts";
import { meshClient, sharedSeed } from "../tls_fixture.ts";
import { INDEX_HEADER, MAX_WATCHERS_PER_ADDRESS } from "../../control/api/app.ts";
import { MAX_API_CONNECTIONS_PER_ADDRESS } from "../../control/api/https_server.ts";

/** Proxies behind the one address: past both per-address caps. */
const PROXIES = Math.max(MAX_API_CONNECTIONS_PER_ADDRESS, MAX_WATCHERS_PER_ADDRESS) + 44;
/** Proxies connecting at once (a fleet reconnects with jitter, not all in one instant). */
const CONNECT_BATCH = 16;

Deno.test("more proxies than the per-address caps behind one address all hold watches and see a change", async () => {
  const c = await ProcessCluster.create();
  const clients: Deno.HttpClient[] = [];
  const stop = new AbortController();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const api = c.api(leader);
    const seed = await sharedSeed();
    const cert = await meshClient("web");
    // Each proxy has its own client, so its own connection, all from 127.0.0.1.
    for (let i = 0; i < PROXIES; i++) {
      clients.push(
        Deno.createHttpClient({ caCerts: [seed.certPem], cert: cert.certPem, key: cert.keyPem }),
      );
    }
    // Connect (one catalog read each, keeping the connection pooled), a batch at a time.
    const indexes: number[] = [];
    for (let i = 0; i < PROXIES; i += CONNECT_BATCH) {
      const batch = clients.slice(i, i + CONNECT_BATCH).map(async (client, j) => {
        const res = await fetch(`${api}/v1/catalog`, { client, signal: stop.signal });
        await res.body?.cancel();
        assertEquals(res.status, 200, `proxy ${i + j + 1} could not read the catalog`);
        return Number(res.headers.get(INDEX_HEADER));
      });
      indexes.push(...await Promise.all(batch));
    }
    const since = Math.max(...indexes);
    // Every proxy holds a blocking query at once, on its open connection.
    let answered = 0;
    const watches = clients.map(async (client) => {
      const res = await fetch(`${api}/v1/catalog?index=${since}&wait=120s`, {
        client,
        signal: stop.signal,
      });
      const status = res.status;
      const index = Number(res.headers.get(INDEX_HEADER));
      await res.body?.cancel();
      answered++;
      return { status, index };
    });
    // One more proxy from the same address registers an instance: every watcher sees it.
    const more = Deno.createHttpClient({
      caCerts: [seed.certPem],
      cert: cert.certPem,
      key: cert.keyPem,
    });
    clients.push(more);
    const put = await fetch(`${api}/v1/services/web/instances/w-new`, {
      client: more,
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ address: "10.0.0.7", port: 8080 }),
    });
    const putBody = await put.text();
    assert(put.status === 200 || put.status === 201, `register: ${put.status} ${putBody}`);
    const results = await Promise.all(watches);
    const refused = results.filter((r) => r.status !== 200);
    assertEquals(refused.length, 0, `watches refused: ${JSON.stringify(refused.slice(0, 3))}`);
    assert(results.every((r) => r.index > since), "a watcher was not woken by the change");
    assertEquals(answered, PROXIES);
  } finally {
    stop.abort();
    for (const cl of clients) cl.close();
    await c.destroy();
  }
});

Deno.test("after a write storm from one client the leader's kill -9 leaves survivors that take writes", async () => {
  const c = await ProcessCluster.create();
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    await c.waitAdminToken();
    // 64 writers on one address, more writes in flight than the node's pipeline per connection
    // and its WAL's group commit take at once, over keys that fit one service's cap.
    const failures = new Map<string, number>();
    let ok = 0;
    await Promise.all(Array.from({ length: 64 }, async (_, w) => {
      for (let k = 0; k < 30; k++) {
        const r = await request(
          `${c.api(leader)}/v1/services/storm/instances/s${w}-${k % 10}`,
          "PUT",
          {
            address: "10.0.0.1",
            port: 80,
            meta: { k: String(k) },
          },
        );
        if (r.status === 200 || r.status === 201) ok++;
        else {
          const why = `${r.status} ${(r.json?.error as { code?: string } | undefined)?.code}`;
          failures.set(why, (failures.get(why) ?? 0) + 1);
        }
      }
    }));
    assertEquals([...failures], [], "writes failed during the storm");
    assertEquals(ok, 64 * 30);
    await c.kill(leader);
    const survivors = c.ids().filter((id) => id !== leader);
    let n = 0;
    await waitFor("a survivor to accept a write after the leader's kill", 30_000, async () => {
      const via = survivors[n % survivors.length]!;
      const r = await request(
        `${c.api(via)}/v1/services/storm/instances/after-${n++}`,
        "PUT",
        { address: "10.0.0.1", port: 80 },
        2_000,
      );
      return r.status === 200 || r.status === 201 ? true : undefined;
    });
  } finally {
    await c.destroy();
  }
});
