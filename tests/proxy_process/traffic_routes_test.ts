/**
 * Route resources on real processes: header, path and method matches with the first match
 * winning, a weighted canary split, sticky canaries by header, a blue-green flip under load
 * with no failed request, an unknown version, and fault injection (aborts within their
 * percentage, never on traffic the rule does not select, delays, metrics).
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  type App,
  applyResources,
  metricsText,
  type ProxyHandle,
  startApp,
  startControl,
  startInstancesAndCaller,
  waitEligible,
  waitFor,
} from "./helpers.ts";

/** One request through `addr`; the body names the version that answered. */
async function call(
  addr: string,
  path = "/",
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const r = await fetch(`http://${addr}${path}`, {
    method: init.method ?? "GET",
    headers: init.headers,
    body: init.method === "POST" ? "x" : undefined,
  });
  return { status: r.status, body: await r.text(), headers: r.headers };
}

function counter(text: string, family: string, match: Record<string, string>): number {
  const f = parsePrometheusText(text).get(family);
  if (!f) return 0;
  return f.samples.filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

Deno.test("Routes on real processes: matches, split, sticky canary, blue-green flip, faults", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-routes-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("v1"), startApp("v2")];
  const proxies: ProxyHandle[] = [];
  /** Applies a Route for `svc` and waits until `ready` says the caller acts on it. */
  const route = async (rules: unknown[], ready: () => Promise<boolean>) => {
    await applyResources(cp.url, [{ kind: "Route", service: "svc", rules }]);
    await waitFor("the caller to apply the Route", ready);
  };
  try {
    const caller = await startInstancesAndCaller(dir, cp.url, "svc", apps, proxies, true);
    const up = caller.upstreams.svc!;
    await waitEligible(caller, "svc", 2);

    await t.step(
      "path, path_prefix, method and headers (exact, present); first match wins",
      async () => {
        await route([
          { match: { headers: { "x-canary": "1" } }, backends: [{ version: "v2" }] },
          { match: { headers: { "x-debug": { present: true } } }, backends: [{ version: "v2" }] },
          { match: { path: "/only-v2" }, backends: [{ version: "v2" }] },
          { match: { path_prefix: "/beta", method: "POST" }, backends: [{ version: "v2" }] },
          { match: { path_prefix: "/beta" }, backends: [{ version: "v1" }] },
          { backends: [{ version: "v1" }] },
        ], async () => (await call(up, "/", { headers: { "x-canary": "1" } })).body === "v2");
        for (let i = 0; i < 10; i++) {
          assertEquals((await call(up, "/")).body, "v1");
          assertEquals((await call(up, "/", { headers: { "x-canary": "1" } })).body, "v2");
          assertEquals((await call(up, "/", { headers: { "x-canary": "0" } })).body, "v1");
          assertEquals((await call(up, "/", { headers: { "x-debug": "" } })).body, "v2");
          assertEquals((await call(up, "/only-v2?x=1")).body, "v2");
          assertEquals((await call(up, "/only-v2/deeper")).body, "v1");
          assertEquals((await call(up, "/beta/a", { method: "POST" })).body, "v2");
          assertEquals((await call(up, "/beta/a")).body, "v1");
        }
      },
    );

    await t.step("a 95/5 canary split holds within statistical bounds", async () => {
      await route(
        [{ backends: [{ version: "v1", weight: 95 }, { version: "v2", weight: 5 }] }],
        async () => (await call(up, "/", { headers: { "x-canary": "1" } })).body === "v1",
      );
      const n = 600;
      let v2 = 0;
      for (let i = 0; i < n; i++) {
        const r = await call(up);
        assertEquals(r.status, 200);
        if (r.body === "v2") v2++;
      }
      // 5% of 600 = 30, standard deviation 5.3: four of them either way.
      assert(v2 >= 9 && v2 <= 51, `v2 answered ${v2} of ${n}`);
    });

    await t.step("hash_on keeps each user on one version", async () => {
      await route([{
        hash_on: { header: "x-user" },
        backends: [{ version: "v1", weight: 50 }, { version: "v2", weight: 50 }],
      }], async () => {
        // Applied once some user lands on v2 every time and another on v1 every time.
        const seen = new Set<string>();
        for (let u = 0; u < 20; u++) {
          seen.add((await call(up, "/", { headers: { "x-user": `u${u}` } })).body);
        }
        return seen.size === 2;
      });
      const versions = new Set<string>();
      for (let u = 0; u < 20; u++) {
        const h = { "x-user": `user-${u}` };
        const v = (await call(up, "/", { headers: h })).body;
        versions.add(v);
        for (let k = 0; k < 5; k++) assertEquals((await call(up, "/", { headers: h })).body, v);
      }
      assertEquals([...versions].sort(), ["v1", "v2"]);
    });

    await t.step("a blue-green flip under load fails no request", async () => {
      await route(
        [{ backends: [{ version: "v1", weight: 100 }, { version: "v2", weight: 0 }] }],
        async () => {
          for (let i = 0; i < 20; i++) if ((await call(up)).body !== "v1") return false;
          return true;
        },
      );
      let stop = false;
      const failures: string[] = [];
      const seen = { v1: 0, v2: 0 };
      let sinceFlip = 0;
      const load = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const post = (i + w) % 2 === 1;
          const r = await call(up, "/", { method: post ? "POST" : "GET" });
          if (r.status !== 200) failures.push(`${r.status} ${r.headers.get("x-skein-error")}`);
          else if (r.body === "v1") seen.v1++;
          else {
            seen.v2++;
            sinceFlip++;
          }
        }
      });
      await waitFor("load to run", () => seen.v1 >= 50);
      await applyResources(cp.url, [{
        kind: "Route",
        service: "svc",
        rules: [{ backends: [{ version: "v1", weight: 0 }, { version: "v2", weight: 100 }] }],
      }]);
      await waitFor("the flip to reach the caller", () => sinceFlip >= 200);
      stop = true;
      await Promise.all(load);
      assertEquals(failures, []);
      assert(seen.v1 >= 50 && seen.v2 >= 200, JSON.stringify(seen));
      // After the flip only v2 answers.
      for (let i = 0; i < 20; i++) assertEquals((await call(up)).body, "v2");
    });

    await t.step("an unknown version answers 503 no_endpoint naming it", async () => {
      await route(
        [{ match: { path_prefix: "/v9" }, backends: [{ version: "v9" }] }, {
          backends: [{ version: "v1" }],
        }],
        async () => (await call(up, "/v9")).status === 503,
      );
      const r = await call(up, "/v9/x");
      assertEquals(r.status, 503);
      assertEquals(r.headers.get("x-skein-error"), "no_endpoint");
      assertEquals(r.headers.get("x-skein-version"), "v9");
      assert(r.body.includes("version v9"), r.body);
      assertEquals((await call(up, "/other")).body, "v1");
    });

    await t.step(
      "faults: aborts within their percentage, only where the rule matches; delays",
      async () => {
        await route([
          {
            match: { headers: { "x-fault": "abort" } },
            backends: [{ version: "v1" }],
            fault: { abort: { percent: 30, status: 500 } },
          },
          {
            match: { path: "/slow" },
            backends: [{ version: "v1" }],
            fault: { delay: { percent: 100, fixed: "300ms" } },
          },
          { backends: [{ version: "v1" }] },
        ], async () => {
          for (let i = 0; i < 50; i++) {
            const r = await call(up, "/", { headers: { "x-fault": "abort" } });
            if (r.headers.get("x-skein-error") === "fault_abort") return true;
          }
          return false;
        });
        const before = counter(await metricsText(caller), "skein_faults_injected_total", {
          destination: "svc",
          kind: "abort",
        });
        const hitsBefore = apps[0]!.hits;
        const n = 400;
        let aborted = 0;
        for (let i = 0; i < n; i++) {
          const r = await call(up, "/", { headers: { "x-fault": "abort" } });
          if (r.status === 500) {
            assertEquals(r.headers.get("x-skein-error"), "fault_abort");
            assertEquals(r.headers.get("x-skein-proxy"), "vm-caller");
            aborted++;
          } else assertEquals([r.status, r.body], [200, "v1"]);
        }
        // 30% of 400 = 120, standard deviation 9.2: four of them either way.
        assert(aborted >= 83 && aborted <= 157, `${aborted} of ${n} aborted`);
        // Aborted requests never reached an endpoint.
        assertEquals(apps[0]!.hits - hitsBefore, n - aborted);
        const after = counter(await metricsText(caller), "skein_faults_injected_total", {
          destination: "svc",
          kind: "abort",
        });
        assertEquals(after - before, aborted);
        // Traffic the rule does not select is never faulted.
        for (let i = 0; i < 100; i++) {
          const r = await call(up, "/", { headers: { "x-fault": "other" } });
          assertEquals([r.status, r.body], [200, "v1"]);
        }
        // A delayed request waits at least the delay, then succeeds.
        const t0 = performance.now();
        const slow = await call(up, "/slow");
        assertEquals([slow.status, slow.body], [200, "v1"]);
        assert(performance.now() - t0 >= 290, "the delay was applied");
        assert(
          counter(await metricsText(caller), "skein_faults_injected_total", {
            destination: "svc",
            kind: "delay",
          }) >= 1,
        );
      },
    );
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
