/**
 * `deno task bench capacity`: the registry at fleet size. Registers `services × perService`
 * instances (default 10,000 × 5) on a 3-node cluster through the leader, then reports the write
 * rate, the snapshots the nodes took (size, encode and save time, from their logs), and how long
 * a follower killed with SIGKILL takes to serve again and to catch up.
 * @module
 */
import { ProcessCluster, request, waitFor } from "../tests/control_process/cluster.ts";
import { type HeartbeatPhaseOptions, runHeartbeatPhase } from "./heartbeat_bench.ts";

/** Options of {@linkcode runCapacityBench}. */
export interface CapacityBenchOptions {
  /** Services. @default 10000 */
  services?: number;
  /** Instances per service. @default 5 */
  perService?: number;
  /** Concurrent writers. @default 64 */
  writers?: number;
  /** The heartbeat and rack-failure phase. */
  heartbeats?: HeartbeatPhaseOptions;
}

/** Runs the benchmark and prints its figures. */
export async function runCapacityBench(opts: CapacityBenchOptions = {}): Promise<void> {
  const services = opts.services ?? 10_000;
  const perService = opts.perService ?? 5;
  const writers = opts.writers ?? 64;
  const total = services * perService;
  const c = await ProcessCluster.create({ logLevel: "info" });
  try {
    await c.startAll();
    const leader = await c.waitLeader(30_000);
    await c.waitAdminToken();
    let next = 0;
    let failed = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: writers }, async () => {
      for (let n = next++; n < total; n = next++) {
        const s = n % services;
        const i = Math.floor(n / services);
        const r = await request(
          `${c.api(leader)}/v1/services/svc-${s}/instances/i-${i}`,
          "PUT",
          {
            address: `10.${(s >> 8) & 255}.${s & 255}.${i + 1}`,
            port: 8080,
            meta: { rack: `r${s % 40}` },
          },
          30_000,
        );
        if (r.status !== 200 && r.status !== 201) {
          failed++;
          if (failed <= 3) console.log(`write failed: ${r.status} ${JSON.stringify(r.json)}`);
        }
      }
    }));
    const writeS = (performance.now() - t0) / 1000;
    console.log(
      `registered ${total - failed} instances in ${services} services in ${writeS.toFixed(1)} s (${
        Math.round((total - failed) / writeS)
      } writes/s, ${failed} failed)`,
    );
    const commit = await c.waitConverged(120_000);
    for (const id of c.ids()) {
      const log = await Deno.readTextFile(`${c.baseDir}/${id}/stderr.log`);
      const snaps = log.split("\n").filter((l) => l.includes('msg="snapshot saved"'));
      const last = snaps.at(-1) ?? "(none)";
      const f = (k: string) => last.match(new RegExp(`${k}=(\\d+)`))?.[1] ?? "?";
      console.log(
        `${id}: ${snaps.length} snapshots; last at index ${f("index")}: ${f("bytes")} bytes, ` +
          `capture ${f("capture_ms")} ms + encode ${
            f("encode_ms")
          } ms off the loop (longest slice ` +
          `${f("longest_slice_ms")} ms), save ${f("save_ms")} ms`,
      );
    }
    await runHeartbeatPhase(c, leader, opts.heartbeats);
    const follower = c.ids().find((id) => id !== leader)!;
    await c.kill(follower);
    const r0 = performance.now();
    await c.start(follower);
    const serving = performance.now() - r0;
    await waitFor(`${follower} to catch up to ${commit}`, 120_000, async () => {
      const h = await c.health(follower, 2000);
      return h && h.applied_index >= commit ? true : undefined;
    });
    const caughtUp = performance.now() - r0;
    console.log(
      `${follower} after kill -9: serving /v1/health ${Math.round(serving)} ms after the start, ` +
        `caught up to index ${commit} after ${Math.round(caughtUp)} ms`,
    );
    const st = await request(`${c.api(leader)}/v1/services?stale=true`);
    console.log(
      `services listed: ${Array.isArray(st.json?.services) ? st.json.services.length : "?"}`,
    );
  } finally {
    await c.destroy();
  }
}
