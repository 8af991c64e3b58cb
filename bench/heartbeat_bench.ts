/**
 * The heartbeat half of `deno task bench capacity`: `proxies` simulated proxies, one per
 * service, heartbeat their instances to the leader every `intervalMs` (the proxy's default
 * `heartbeat_interval`, 2 s); then a "rack" of them stops at once and the phase measures how
 * long until the leader has marked all their instances critical, how many Raft entries that
 * took, and what a writer going on meanwhile saw.
 * @module
 */
import type { ProcessCluster } from "../tests/control_process/cluster.ts";
import { request, waitFor } from "../tests/control_process/cluster.ts";
import { sharedSeed } from "../tests/tls_fixture.ts";

/** Options of {@linkcode runHeartbeatPhase}. */
export interface HeartbeatPhaseOptions {
  /** Simulated proxies (one per service, up to the services registered). @default 10000 */
  proxies?: number;
  /** Heartbeat interval of each. @default 2000 */
  intervalMs?: number;
  /** Proxies that stop at once. @default 1000 */
  rack?: number;
  /** How long the steady load is measured. @default 20000 */
  windowMs?: number;
}

function _pct(sorted: number[], p: number): string {
  const v = sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return v === undefined ? "n/a" : v.toFixed(1);
}

async function _cpuS(pid: number): Promise<number> {
  const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]!.split(" ");
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/** Instances of `names` the node's catalog (a stale read) holds as critical. */
async function _critical(c: ProcessCluster, id: string, names: readonly string[]): Promise<number> {
  const r = await request(`${c.api(id)}/v1/catalog?stale=true`, "GET", undefined, 30_000);
  const services = r.json?.services as Record<string, { health: string }[]> | undefined;
  if (!services) throw new Error(`catalog from ${id}: ${r.status}`);
  let n = 0;
  for (const name of names) {
    for (const i of services[name] ?? []) if (i.health === "critical") n++;
  }
  return n;
}

/** Runs the heartbeat load and the rack failure against `leader`, printing the figures. */
export async function runHeartbeatPhase(
  c: ProcessCluster,
  leader: string,
  opts: HeartbeatPhaseOptions = {},
): Promise<void> {
  const intervalMs = opts.intervalMs ?? 2000;
  const windowMs = opts.windowMs ?? 20_000;
  const cat = await request(`${c.api(leader)}/v1/catalog`, "GET", undefined, 60_000);
  const services = (cat.json?.services ?? {}) as Record<string, { id: string }[]>;
  const names = Object.keys(services).filter((n) => n.startsWith("svc-")).sort();
  const proxies = Math.min(opts.proxies ?? 10_000, names.length);
  const rack = Math.min(opts.rack ?? 1000, proxies);
  const token = await c.adminToken();
  const seed = await sharedSeed();
  const clients = Array.from(
    { length: 32 },
    () => Deno.createHttpClient({ caCerts: [seed.certPem] }),
  );
  const stopped = new Array<boolean>(proxies).fill(false);
  const lat: number[] = [];
  const statuses = new Map<number, number>();
  let measuring = false;
  const ac = new AbortController();
  const url = `${c.api(leader)}/v1/heartbeat`;
  const beat = async (p: number) => {
    const body = JSON.stringify({
      instances: services[names[p]!]!.map((i) => ({
        service: names[p],
        id: i.id,
        health: "passing",
      })),
    });
    // Spread over the interval, as proxies started at different times are.
    await new Promise((r) => setTimeout(r, Math.random() * intervalMs));
    while (!ac.signal.aborted && !stopped[p]) {
      const t0 = performance.now();
      let status = 0;
      try {
        const res = await fetch(url, {
          method: "PUT",
          client: clients[p % clients.length],
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        status = res.status;
        await res.body?.cancel();
      } catch {
        status = 0;
      }
      if (measuring) {
        lat.push(performance.now() - t0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (performance.now() - t0))));
    }
  };
  const loops = Array.from({ length: proxies }, (_, p) => beat(p));
  const pid = c.node(leader).child!.pid;
  try {
    // Two intervals to settle (every instance heartbeated, health changes committed).
    await new Promise((r) => setTimeout(r, 2 * intervalMs + 2000));
    measuring = true;
    const cpu0 = await _cpuS(pid);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const cpu1 = await _cpuS(pid);
    const secs = (performance.now() - t0) / 1000;
    measuring = false;
    lat.sort((a, b) => a - b);
    console.log(
      `heartbeats: ${proxies} proxies every ${intervalMs} ms: ${
        (lat.length / secs).toFixed(0)
      }/s ` +
        `answered (${JSON.stringify(Object.fromEntries(statuses))}), p50 ${_pct(lat, 0.5)} ms, ` +
        `p99 ${_pct(lat, 0.99)} ms; leader CPU ${
          (100 * (cpu1 - cpu0) / secs).toFixed(0)
        }% of a core`,
    );
    // The rack: `rack` proxies stop at once; a writer goes on meanwhile.
    // Health is replicated: a follower, which takes no heartbeats, reports it without
    // competing with the heartbeats for the leader's connection slots.
    const follower = c.running().find((id) => id !== leader)!;
    const rackNames = names.slice(0, rack);
    let rackInstances = 0;
    for (const n of rackNames) rackInstances += services[n]!.length;
    const idx0 = (await c.health(leader, 5000))?.commit_index ?? 0;
    for (let p = 0; p < rack; p++) stopped[p] = true;
    const gone = performance.now();
    const writes: number[] = [];
    const writeFailures = new Map<number, number>();
    let writing = true;
    let wrote = 0;
    const writer = (async () => {
      while (writing) {
        const w0 = performance.now();
        const r = await request(`${c.api(leader)}/v1/services/rack-writer/instances/w`, "PUT", {
          address: "10.254.0.1",
          port: 1 + (wrote++ % 60000),
        }, 10_000);
        if (r.status === 200 || r.status === 201) writes.push(performance.now() - w0);
        else writeFailures.set(r.status, (writeFailures.get(r.status) ?? 0) + 1);
      }
    })();
    let firstCritical = 0;
    let seen = 0;
    await waitFor(
      () => `${rackInstances} rack instances critical (${seen} so far)`,
      120_000,
      async () => {
        seen = await _critical(c, follower, rackNames);
        if (firstCritical === 0 && seen > 0) firstCritical = performance.now() - gone;
        return seen >= rackInstances ? true : undefined;
      },
    );
    const allCritical = performance.now() - gone;
    writing = false;
    await writer;
    const idx1 = (await c.health(leader, 5000))?.commit_index ?? 0;
    writes.sort((a, b) => a - b);
    console.log(
      `rack failure: ${rack} proxies (${rackInstances} instances) stopped at once; first marked ` +
        `critical after ${(firstCritical / 1000).toFixed(1)} s, all after ${
          (allCritical / 1000).toFixed(1)
        } s; ${
          idx1 - idx0 - wrote
        } Raft entries besides the writer's ${wrote}; writer meanwhile: ` +
        `p50 ${_pct(writes, 0.5)} ms, p99 ${_pct(writes, 0.99)} ms, max ${_pct(writes, 1)} ms ` +
        `over ${writes.length} acknowledged, failed by status ${
          JSON.stringify(Object.fromEntries(writeFailures))
        }`,
    );
  } finally {
    ac.abort();
    await Promise.allSettled(loops);
    for (const cl of clients) cl.close();
  }
}
