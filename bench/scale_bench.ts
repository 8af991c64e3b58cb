/**
 * `deno task bench scale`: catalog propagation at fleet size. Registers `instances` instances on
 * a 3-node cluster, starts `watchers` simulated proxies — mTLS clients with mesh certificates,
 * each on its own connection, holding blocking catalog queries with deltas, spread over the
 * three nodes — then makes `changes` writes one by one and measures, from each write's
 * acknowledgement, how long until every watcher holds its index. Reports p50/p99/max, the
 * control nodes' CPU and RSS, and the catalog bytes the nodes sent per change. The watchers are
 * raw mTLS clients (`scale_watcher.ts`) from one address, as a fleet behind one NAT would be:
 * `Deno.connectTls` cannot pick a local address, and proxies with mesh certificates are exempt
 * from the per-address caps. `SCALE_NODE_FLAGS` adds Deno flags to the nodes (e.g.
 * `--v8-flags=--perf-basic-prof`) and `SCALE_PAUSE_S` waits that long, after printing the nodes'
 * pids, before the changes, so a profiler can attach; `SCALE_LOG_LEVEL=info` makes the nodes
 * log at info (kept with `SKEIN_TEST_KEEP=1`).
 * @module
 */
import { ProcessCluster, request, waitFor } from "../tests/control_process/cluster.ts";
import { meshClient, sharedSeed } from "../tests/tls_fixture.ts";
import { DEFAULT_LEASE_TTL_MS } from "../control/registry/mod.ts";
import { RawWatcher } from "./scale_watcher.ts";
import type { WriteDone, WriteOrder } from "./scale_writer.ts";

/** Options of {@linkcode runScaleBench}. */
export interface ScaleBenchOptions {
  /** Registered instances (in services of 5). @default 10000 */
  instances?: number;
  /** Simulated proxies. @default 1000 */
  watchers?: number;
  /** Writes measured one after the other. @default 10 */
  changes?: number;
}

/** Watchers connecting at once. */
const WATCHER_BATCH = 24;

function _percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? NaN;
}

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. */
async function _proc(pid: number): Promise<{ cpuS: number; rss: number }> {
  const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]!.split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const rssKb = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? "0");
  return { cpuS: ticks / 100, rss: rssKb * 1024 };
}

/** Runs the benchmark and prints its figures. */
export async function runScaleBench(opts: ScaleBenchOptions = {}): Promise<void> {
  const total = opts.instances ?? 10_000;
  const watchers = opts.watchers ?? 1000;
  const changes = opts.changes ?? 10;
  const flags = (Deno.env.get("SCALE_NODE_FLAGS") ?? "").split(" ").filter((f) => f !== "");
  const logLevel = Deno.env.get("SCALE_LOG_LEVEL") === "info" ? "info" : "warn";
  const c = await ProcessCluster.create({ logLevel, denoFlags: flags });
  const ac = new AbortController();
  const conns = new Set<RawWatcher>();
  let writer: Worker | null = null;
  try {
    await c.startAll();
    const leader = await c.waitLeader(30_000);
    await c.waitAdminToken();
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      for (let n = next++; n < total; n = next++) {
        const s = Math.floor(n / 5);
        const r = await request(
          `${c.api(leader)}/v1/services/svc-${s}/instances/i-${n % 5}`,
          "PUT",
          {
            address: `10.${(s >> 8) & 255}.${s & 255}.${(n % 5) + 1}`,
            port: 8080,
          },
          30_000,
        );
        if (r.status !== 200 && r.status !== 201) throw new Error(`register: ${r.status}`);
      }
    }));
    await c.waitConverged(120_000);
    // Nothing heartbeats these instances: one lease TTL after registering, the leader marks
    // them critical in batches, and every batch is a catalog change for every watcher. Let
    // that settle first, so the watchers start on a quiet catalog and the measured changes
    // are the bench's own.
    const registeredAt = Date.now();
    let last = -1;
    let stableSince = Date.now();
    await waitFor("the catalog to settle after the leases expire", 300_000, async () => {
      const idx = await c.waitConverged(120_000);
      if (idx !== last) {
        last = idx;
        stableSince = Date.now();
      }
      const quietMs = Date.now() - stableSince;
      return Date.now() - registeredAt > DEFAULT_LEASE_TTL_MS + 5_000 && quietMs > 5_000
        ? true
        : undefined;
    });
    console.log(
      `registered ${total} instances (settled at index ${last}); starting ${watchers} watchers`,
    );
    const seed = await sharedSeed();
    const cert = await meshClient("scale-watcher");
    const held = new Array<number>(watchers).fill(0);
    const seen: Map<number, number>[] = Array.from({ length: watchers }, () => new Map());
    let waiting = 0;
    const ids = c.ids();
    const refused = new Map<string, number>();
    // Started in batches: the API admits only so many TLS handshakes at once.
    const ready: (() => void)[] = [];
    const targetOf = (node: number) => {
      const url = new URL(c.api(ids[node % ids.length]!));
      return {
        hostname: url.hostname,
        port: Number(url.port),
        caPem: seed.certPem,
        certPem: cert.certPem,
        keyPem: cert.keyPem,
      };
    };
    const watch = async (w: number) => {
      let node = w;
      let conn: RawWatcher | null = null;
      let first = true;
      const drop = () => {
        if (conn === null) return;
        conns.delete(conn);
        conn.close();
        conn = null;
      };
      while (!ac.signal.aborted) {
        const q = first
          ? "/v1/catalog?stale=true"
          : `/v1/catalog?stale=true&index=${held[w]}&wait=60s`;
        const blocking = !first;
        if (blocking) waiting++;
        try {
          if (conn === null) {
            conn = await RawWatcher.connect(targetOf(node));
            conns.add(conn);
          }
          const a = await conn.get(q, blocking);
          if (a.status !== 200) {
            const what = `${a.status}${a.code ? ` ${a.code}` : ""}`;
            refused.set(what, (refused.get(what) ?? 0) + 1);
            // As a proxy does: a node past its staleness bound is left for the next one.
            if (a.code === "stale_state") {
              drop();
              node++;
            }
            throw new Error(`catalog ${what}`);
          }
          if (a.index !== held[w]) seen[w]!.set(a.index, performance.timeOrigin + a.at);
          held[w] = a.index;
          if (first) ready[w]?.();
          first = false;
        } catch (e) {
          if (ac.signal.aborted) break;
          console.log(`watcher ${w}: ${(e as Error).message}`);
          if (!(e as Error).message.startsWith("catalog ")) drop();
          await new Promise((r) => setTimeout(r, 500 + Math.random() * 500));
        } finally {
          if (blocking) waiting--;
        }
      }
      drop();
    };
    for (let b = 0; b < watchers; b += WATCHER_BATCH) {
      const batch: Promise<void>[] = [];
      for (let w = b; w < Math.min(watchers, b + WATCHER_BATCH); w++) {
        batch.push(new Promise((r) => ready[w] = r));
        watch(w);
      }
      await Promise.all(batch);
    }
    await waitFor(
      "every watcher to hold a blocking query",
      300_000,
      () => waiting >= watchers ? true : undefined,
    );
    const pids = c.running().map((id) => c.node(id).child!.pid);
    const pauseS = Number(Deno.env.get("SCALE_PAUSE_S") ?? "0");
    if (pauseS > 0) {
      console.log(`node pids: ${pids.join(",")}; changes in ${pauseS} s`);
      await new Promise((r) => setTimeout(r, pauseS * 1000));
    }
    const before = await Promise.all(pids.map(_proc));
    const selfBefore = await _proc(Deno.pid);
    const bytesBefore = await _bytesSent(c);
    const lat: number[] = [];
    const token = await c.adminToken();
    const w = writer = new Worker(new URL("./scale_writer.ts", import.meta.url), {
      type: "module",
    });
    for (let k = 0; k < changes; k++) {
      w.postMessage(
        {
          url: `${c.api(leader)}/v1/services/scale-change/instances/c-${k}`,
          body: { address: "10.250.0.1", port: 8080 + k },
          token,
          caPem: seed.certPem,
        } satisfies WriteOrder,
      );
      const done = await new Promise<WriteDone>((r) => w.onmessage = (e) => r(e.data));
      const ack = done.ackAt;
      const index = done.index;
      if (index === null) throw new Error(`change ${k}: ${done.status}`);
      await waitFor(
        `every watcher to hold index ${index}`,
        120_000,
        () => held.every((h) => h >= index) ? true : undefined,
      );
      for (const s of seen) {
        let t = Infinity;
        for (const [i, at] of s) if (i >= index && at < t) t = at;
        lat.push(Math.max(0, t - ack));
      }
      await waitFor(
        "watchers back in their queries",
        60_000,
        () => waiting >= watchers ? true : undefined,
      );
    }
    const after = await Promise.all(pids.map(_proc));
    const selfAfter = await _proc(Deno.pid);
    const bytesAfter = await _bytesSent(c);
    lat.sort((a, b) => a - b);
    console.log(
      `${watchers} watchers, ${total} instances, ${changes} changes: ack → every watcher ` +
        `p50 ${_percentile(lat, 0.5).toFixed(1)} ms, p99 ${
          _percentile(lat, 0.99).toFixed(1)
        } ms, ` +
        `max ${lat.at(-1)!.toFixed(1)} ms`,
    );
    console.log(
      `refused answers: ${
        refused.size === 0 ? "none" : JSON.stringify(Object.fromEntries(refused))
      }`,
    );
    console.log(
      `catalog bytes sent per change (all nodes): ${
        Math.round((bytesAfter - bytesBefore) / changes)
      }`,
    );
    const nodeCpuS = pids.reduce((s, _, i) => s + after[i]!.cpuS - before[i]!.cpuS, 0);
    console.log(
      `control CPU per woken watcher: ${(nodeCpuS * 1e6 / (watchers * changes)).toFixed(0)} µs; ` +
        `bench (watchers + writer) CPU over the changes ${
          (selfAfter.cpuS - selfBefore.cpuS).toFixed(2)
        } s, ${
          ((selfAfter.cpuS - selfBefore.cpuS) * 1e6 / (watchers * changes)).toFixed(0)
        } µs per watcher answer`,
    );
    pids.forEach((_, i) =>
      console.log(
        `node ${i + 1}: CPU ${(after[i]!.cpuS - before[i]!.cpuS).toFixed(2)} s over the changes, ` +
          `RSS ${(after[i]!.rss / 1e6).toFixed(0)} MB`,
      )
    );
  } finally {
    ac.abort();
    writer?.terminate();
    for (const w of conns) w.close();
    await c.destroy();
  }
}

async function _bytesSent(c: ProcessCluster): Promise<number> {
  let sum = 0;
  for (const id of c.running()) {
    const token = await c.adminToken();
    const seed = await sharedSeed();
    const client = Deno.createHttpClient({ caCerts: [seed.certPem] });
    try {
      const res = await fetch(`${c.api(id)}/metrics`, {
        client,
        headers: { authorization: `Bearer ${token}` },
      });
      const text = await res.text();
      sum += Number(text.match(/^skein_control_catalog_answer_bytes_total (\d+)/m)?.[1] ?? "0");
    } finally {
      client.close();
    }
  }
  return sum;
}
