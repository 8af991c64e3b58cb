/**
 * A rack going down: more instances expire in one lease sweep than one `set_health` entry may
 * carry, and every one of them must still be marked critical.
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { ControlNode } from "./control_node.ts";
import { MAX_HEALTH_CHANGES_PER_COMMAND, validateCommand } from "../registry/mod.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function until(what: string, fn: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("a rack of instances expiring in one sweep is marked critical in batches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_rack_" });
  const port = freePort();
  const node = await ControlNode.start({
    node: "cp-1",
    dataDir: dir,
    raftListen: { hostname: "127.0.0.1", port },
    raftAdvertise: `127.0.0.1:${port}`,
    apiUrl: "http://127.0.0.1:1",
    peers: [{ id: "cp-1", hostname: "127.0.0.1", port }],
    join: false,
    clusterId: "skein.local",
    trustDomain: "skein.local",
    tickMs: 50,
    electionTicks: 10,
    snapshotEvery: 100_000,
    leaseTtlMs: 2_000,
    log: nullLogger,
  });
  try {
    await until("a leader", () => node.isLeader());
    const n = MAX_HEALTH_CHANGES_PER_COMMAND * 2 + 1;
    const items = [];
    for (let i = 0; i < n; i++) {
      const service = `svc-${i % 50}`;
      const id = `i-${i}`;
      const r = await node.propose(
        validateCommand({
          type: "register_instance",
          instance: { service, id, address: "10.0.0.1", port: 8080 },
        }),
        AbortSignal.timeout(30_000),
      );
      assert(r.ok);
      items.push({ service, id, health: "passing" as const });
    }
    // One heartbeat for all: their leases then run out in the same sweep, as a rack's do.
    node.heartbeat(items);
    const critical = () => [...node.state().allInstances()].filter((i) => i.health === "critical");
    await until(`${n} instances critical`, () => critical().length === n);
    assertEquals(critical().length, n);
  } finally {
    await node.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
