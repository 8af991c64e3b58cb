/**
 * Resilience through real proxies: timeouts (504), circuit breaking (503), the retry budget,
 * outlier ejection and return, and losing one of two instances under load.
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  adminJson,
  type App,
  applyResources,
  catalogInstances,
  get,
  metricsText,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";

interface _Endpoints {
  outbound: {
    service: string;
    eligible: number;
    endpoints: { endpoint: { key: string }; ejected: boolean }[];
  }[];
}

async function _svc(caller: ProxyHandle) {
  const e = await adminJson(caller, "/endpoints") as unknown as _Endpoints;
  return e.outbound.find((d) => d.service === "svc");
}

/** Applies a Policy for `svc` and waits until the caller's effective policy passes `ready`. */
async function _policy(
  cpUrl: string,
  caller: ProxyHandle,
  p: Record<string, unknown>,
  ready: (got: Record<string, unknown>) => boolean,
) {
  await applyResources(cpUrl, [{ kind: "Policy", service: "svc", ...p }]);
  await waitFor("the caller to apply the policy", async () => {
    const cfg = await adminJson(caller, "/config") as {
      policies: Record<string, Record<string, unknown>>;
    };
    return ready(cfg.policies.svc!);
  });
}

function _sum(text: string, family: string, match: Record<string, string>): number {
  const f = parsePrometheusText(text).get(family);
  if (!f) return 0;
  return f.samples.filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

Deno.test("timeouts, circuit breaking, retry budget, outlier ejection and a lost instance", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-resil-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("svc-1"), startApp("svc-2")];
  const proxies: ProxyHandle[] = [];
  try {
    for (const [i, a] of apps.entries()) {
      proxies.push(
        await startProxy(dir, {
          node: `vm-${i + 1}`,
          control: [cp.url],
          services: [{
            name: "svc",
            port: a.port,
            // A probe timeout far above the app's answer time: /healthz is served by this busy
            // test process, and a stalled probe must not mark a live instance critical.
            health: { http: "/healthz", interval: "200ms", timeout: "1s" },
          }],
        }),
      );
    }
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      upstreams: [{ service: "svc", listen: "127.0.0.1:0" }],
    });
    proxies.push(caller);
    const up = caller.upstreams.svc!;
    await waitFor("both endpoints", async () => (await _svc(caller))?.eligible === 2);

    await t.step("a slow upstream gets 504 after the Policy timeout", async () => {
      await _policy(cp.url, caller, { timeout: "300ms" }, (g) => g.timeout === 300);
      for (const a of apps) a.delayMs = 3000;
      const r = await get(up);
      assertEquals(r.status, 504);
      assertEquals(r.headers.get("x-skein-error"), "upstream_timeout");
      assertEquals(r.headers.get("x-skein-proxy"), "vm-caller");
      for (const a of apps) a.delayMs = 0;
    });

    await t.step("requests over the circuit breaker limit get 503 at once", async () => {
      await _policy(
        cp.url,
        caller,
        { circuit_breaker: { max_requests: 2 } },
        (g) => (g.circuit_breaker as { max_requests: number }).max_requests === 2,
      );
      // Long enough that all six are in flight together even on a stalled machine.
      for (const a of apps) a.delayMs = 3000;
      const rs = await Promise.all(Array.from({ length: 6 }, () => get(up)));
      for (const a of apps) a.delayMs = 0;
      const ok = rs.filter((r) => r.status === 200).length;
      const shed = rs.filter((r) =>
        r.status === 503 && r.headers.get("x-skein-error") === "overloaded"
      ).length;
      assertEquals(ok, 2);
      assertEquals(shed, 4);
      const m = await metricsText(caller);
      assertEquals(
        _sum(m, "skein_circuit_breaker_rejections_total", { destination: "svc" }),
        4,
      );
    });

    await t.step("with every instance failing, the retry budget caps the extra load", async () => {
      await _policy(cp.url, caller, {
        retries: {
          attempts: 3,
          on: ["5xx"],
          backoff: { base: "1ms", max: "2ms" },
          budget_percent: 20,
        },
        outlier_detection: { consecutive_5xx: 100000, max_ejection_percent: 0 },
      }, (g) => (g.retries as { attempts: number }).attempts === 3);
      for (const a of apps) {
        a.status = 503;
        a.hits = 0;
      }
      const n = 400;
      const started = Date.now();
      for (let i = 0; i < n; i++) assertEquals((await get(up)).status, 503);
      const windows = Math.ceil((Date.now() - started) / 10_000);
      const hits = apps[0]!.hits + apps[1]!.hits;
      // Without a budget 3 tries each would be 1200; the budget allows 20% of requests plus a
      // reserve of 10 retries per second over its 10 s window (more windows on a slow machine).
      assert(hits > n, `some retries happen (${hits})`);
      const cap = n * 1.2 + 100 * windows;
      assert(hits <= cap, `budget caps retries: ${hits} hits for ${n} requests (cap ${cap})`);
      for (const a of apps) a.status = 200;
    });

    await t.step("an endpoint failing in a row is ejected, then returns", async () => {
      await _policy(cp.url, caller, {
        retries: { attempts: 2, on: ["5xx"], backoff: { base: "1ms", max: "2ms" } },
        outlier_detection: {
          consecutive_5xx: 3,
          interval: "200ms",
          base_ejection: "5s", // still ejected when checked, however slow the 20 calls were
          max_ejection_percent: 50,
        },
      }, (g) => (g.outlier_detection as { consecutive_5xx: number }).consecutive_5xx === 3);
      apps[1]!.status = 500;
      for (let i = 0; i < 20; i++) assertEquals((await get(up)).status, 200);
      const ejected = (await _svc(caller))!.endpoints.filter((e) => e.ejected);
      assertEquals(ejected.length, 1);
      assertEquals(ejected[0]!.endpoint.key, proxies[1]!.inbound);
      assert(
        _sum(await metricsText(caller), "skein_outlier_ejections_total", {
          destination: "svc",
          reason: "consecutive_5xx",
        }) >= 1,
      );
      apps[1]!.status = 200;
      await waitFor(
        "the endpoint to return",
        async () => (await _svc(caller))!.endpoints.every((e) => !e.ejected),
        20_000,
      );
      apps[1]!.hits = 0;
      for (let i = 0; i < 20; i++) assertEquals((await get(up)).status, 200);
      assert(apps[1]!.hits > 0, "the restored endpoint gets traffic again");
    });

    await t.step(
      "with one of two instances killed, at least 99.9% of 2000 requests succeed",
      async () => {
        await _policy(cp.url, caller, {
          retries: {
            attempts: 3,
            on: ["5xx", "reset", "connect_failure"],
            backoff: { base: "1ms", max: "5ms" },
          },
          outlier_detection: {
            consecutive_5xx: 3,
            interval: "500ms",
            base_ejection: "30s",
            max_ejection_percent: 50,
          },
        }, (g) => (g.retries as { attempts: number }).attempts === 3);
        await apps[1]!.close();
        let ok = 0;
        const total = 2000;
        const workers = 8;
        let next = 0;
        await Promise.all(Array.from({ length: workers }, async () => {
          while (next < total) {
            next++;
            const r = await get(up);
            if (r.status === 200) ok++;
          }
        }));
        assert(ok >= total * 0.999, `${ok} of ${total} succeeded`);
        // The dead instance's health check fails, so the catalog marks it critical too.
        await waitFor("the catalog to mark the killed instance", async () => {
          const instances = await catalogInstances(cp.url, "svc");
          return instances.find((i) => i.id === "vm-2-svc")?.health === "critical";
        });
      },
    );
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
