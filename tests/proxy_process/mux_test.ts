/**
 * skein-mux/1 with real processes: a control node, a callee proxy in front of an app, and
 * callers enrolled with join tokens (so the hop is mTLS and the mux can be negotiated). A burst
 * of concurrent calls must all arrive, and both proxies' `/metrics` must show that they
 * travelled as mux streams, or, with `SKEIN_MESH_MUX=off` on the caller, that they did not.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { parsePrometheusText } from "../../common/metrics.ts";
import {
  adminJson,
  type App,
  get,
  metricsText,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitEligible,
  waitFor,
} from "./helpers.ts";

/** Concurrent calls per burst: more than one pooled connection would carry at once. */
const BURST_CALLS = 20;

/** The value of `name{direction=...}` on `p`'s `/metrics` (summed over its workers), or 0. */
async function meshMetric(p: ProxyHandle, name: string, direction: string): Promise<number> {
  const fam = parsePrometheusText(await metricsText(p)).get(name);
  return fam?.samples.find((s) => s.labels.direction === direction)?.value ?? 0;
}

/** Waits until `caller` has an eligible endpoint of `service`. */
async function waitForEndpoint(caller: ProxyHandle, service: string): Promise<void> {
  await waitFor(`the ${service} endpoint in the caller`, async () => {
    const e = await adminJson(caller, "/endpoints") as {
      outbound: { service: string; eligible: number }[];
    };
    return e.outbound.find((d) => d.service === service)?.eligible === 1;
  });
}

/** Sends {@linkcode BURST_CALLS} calls at once through `addr`; all must reach the app. */
async function burst(addr: string): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: BURST_CALLS }, (_, i) => get(addr, `/call/${i}`)),
  );
  for (const [i, r] of results.entries()) {
    assertEquals([r.status, r.body], [200, "ledger"], `call ${i}`);
  }
}

Deno.test("calls between proxies ride skein-mux/1 sessions, visible on /metrics", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-mux-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("ledger")];
  const proxies: ProxyHandle[] = [];
  try {
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      services: [{ name: "ledger", port: apps[0]!.port }],
    });
    proxies.push(callee);
    // The caller's sessions take the socket-stream path (the fallback when the runtime lacks
    // the native handle, see common/tls/raw_handle.ts), the callee's the native handle.
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
    }, { env: { SKEIN_TLS_RAW_HANDLE: "off" } });
    proxies.push(caller);
    await callee.child.waitLine(/data plane started.*mtls=true/);
    await caller.child.waitLine(/data plane started.*mtls=true/);
    await waitForEndpoint(caller, "ledger");

    let inboundSessionsOpened = 0;
    await t.step("a burst of calls succeeds and both ends count mux sessions", async () => {
      const hitsBefore = apps[0]!.hits;
      await burst(caller.upstreams.ledger!);
      assertEquals(apps[0]!.hits - hitsBefore, BURST_CALLS);

      const outSessions = await meshMetric(caller, "skein_mesh_sessions", "outbound");
      const outStreams = await meshMetric(caller, "skein_mesh_streams_total", "outbound");
      assert(outSessions >= 1, `caller outbound sessions ${outSessions}`);
      assert(outStreams >= 1, `caller outbound streams ${outStreams}`);
      assert(
        await meshMetric(caller, "skein_mesh_sessions_opened_total", "outbound") >= outSessions,
      );

      const inSessions = await meshMetric(callee, "skein_mesh_sessions", "inbound");
      const inStreams = await meshMetric(callee, "skein_mesh_streams_total", "inbound");
      assert(inSessions >= 1, `callee inbound sessions ${inSessions}`);
      // Every stream the caller opened was accepted by one of the callee's workers.
      assertEquals(inStreams, outStreams);
      // The callee answered over its sessions: frames went out, in no more writes than frames.
      const writes = await meshMetric(callee, "skein_mesh_writes_total", "inbound");
      const frames = await meshMetric(callee, "skein_mesh_frames_total", "inbound");
      assert(writes >= 1 && frames >= writes, `callee wrote ${frames} frames in ${writes} writes`);
      const outWrites = await meshMetric(caller, "skein_mesh_writes_total", "outbound");
      const outFrames = await meshMetric(caller, "skein_mesh_frames_total", "outbound");
      assert(
        outWrites >= 1 && outFrames >= outWrites,
        `caller wrote ${outFrames} frames in ${outWrites} writes`,
      );
      inboundSessionsOpened = await meshMetric(
        callee,
        "skein_mesh_sessions_opened_total",
        "inbound",
      );
    });

    await t.step(
      "with SKEIN_MESH_MUX=off the caller's calls succeed without sessions",
      async () => {
        const plain = await startProxy(dir, {
          node: "vm-billing-plain",
          control: [cp.url],
          upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
        }, { env: { SKEIN_MESH_MUX: "off" } });
        proxies.push(plain);
        await plain.child.waitLine(/data plane started.*mtls=true/);
        await waitForEndpoint(plain, "ledger");
        const hitsBefore = apps[0]!.hits;
        await burst(plain.upstreams.ledger!);
        assertEquals(apps[0]!.hits - hitsBefore, BURST_CALLS);

        assertEquals(await meshMetric(plain, "skein_mesh_sessions", "outbound"), 0);
        assertEquals(await meshMetric(plain, "skein_mesh_streams_total", "outbound"), 0);
        // The callee saw plain connections only: no session was opened to it meanwhile.
        assertEquals(
          await meshMetric(callee, "skein_mesh_sessions_opened_total", "inbound"),
          inboundSessionsOpened,
        );
      },
    );
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a callee that drains under a steady stream of POSTs loses none of them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-mux-drain-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("ledger"), startApp("ledger")];
  const proxies: ProxyHandle[] = [];
  let stop = false;
  let loops: Promise<void>[] = [];
  try {
    for (const [i, a] of apps.entries()) {
      // The drained callee serves its sessions on the socket-stream path, the other on the
      // native handle (common/tls/raw_handle.ts): both carry the steady stream.
      proxies.push(
        await startProxy(dir, {
          node: `vm-ledger-${i}`,
          control: [cp.url],
          services: [{ name: "ledger", port: a.port }],
        }, i === 0 ? { env: { SKEIN_TLS_RAW_HANDLE: "off" } } : {}),
      );
    }
    const caller = await startProxy(dir, {
      node: "vm-payer",
      control: [cp.url],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
    });
    proxies.push(caller);
    await waitEligible(caller, "ledger", 2);

    // POST is not idempotent: only a call the callee provably never read may be sent again.
    const statuses: number[] = [];
    const errs: string[] = [];
    loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const r = await fetch(`http://${caller.upstreams.ledger!}/pay`, {
          method: "POST",
          body: "x".repeat(200),
        });
        const body = await r.text();
        statuses.push(r.status);
        if (r.status !== 200) errs.push(`${r.status} ${r.headers.get("x-skein-error")} ${body}`);
      }
    });
    await waitFor("calls on both callees", () => apps[0]!.hits > 20 && apps[1]!.hits > 20);
    assert(await meshMetric(caller, "skein_mesh_sessions", "outbound") >= 1);

    const drained = await proxies[0]!.child.stop("SIGTERM");
    assertEquals(drained.code, 0);
    proxies.shift();
    const after = apps[1]!.hits;
    await waitFor("calls going on to the other callee", () => apps[1]!.hits > after + 100);
    stop = true;
    await Promise.all(loops);
    const failed = statuses.filter((s) => s !== 200);
    assertEquals(failed, [], `${failed.length} of ${statuses.length} POSTs failed: ${errs}`);
  } finally {
    stop = true;
    await Promise.allSettled(loops);
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
