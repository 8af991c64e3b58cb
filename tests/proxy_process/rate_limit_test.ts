/**
 * RateLimit at the callee's inbound on real processes: a 50 rps limit admits about 50 rps per
 * instance and answers the rest 429 with its headers; `scope: fleet` over three instances
 * admits about the limit in total, and re-shares it when one instance stops.
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  adminJson,
  type App,
  applyResources,
  metricsText,
  type ProxyHandle,
  startApp,
  startControl,
  startInstancesAndCaller,
  waitFor,
} from "./helpers.ts";

/** Hammers `addr` with `loops` concurrent loops for `ms`; counts 200s and keeps a 429. */
async function hammer(addr: string, ms: number, loops = 8) {
  let ok = 0, limited = 0, other = 0;
  let sample: Headers | null = null;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: loops }, async () => {
    while (performance.now() - t0 < ms) {
      const r = await fetch(`http://${addr}/`);
      await r.body?.cancel();
      if (r.status === 200) ok++;
      else if (r.status === 429) {
        limited++;
        sample = r.headers;
      } else other++;
    }
  }));
  return { ok, limited, other, seconds: (performance.now() - t0) / 1000, sample };
}

/** The `x-ratelimit-limit` values the 429s of a short burst of requests carry. */
async function limitsSeen(addr: string): Promise<Set<string>> {
  const seen = new Set<string>();
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let i = 0; i < 15; i++) {
      const r = await fetch(`http://${addr}/`);
      await r.body?.cancel();
      const l = r.headers.get("x-ratelimit-limit");
      if (r.status === 429 && l !== null) seen.add(l);
    }
  }));
  return seen;
}

Deno.test("RateLimit: per instance, and scope fleet sharing the limit and re-sharing it", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-ratelimit-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("a-1"), startApp("a-2"), startApp("a-3")];
  const proxies: ProxyHandle[] = [];
  try {
    const caller = await startInstancesAndCaller(dir, cp.url, "svc", apps, proxies);
    const up = caller.upstreams.svc!;
    const eligible = async () => {
      const e = await adminJson(caller, "/endpoints") as {
        outbound: { service: string; eligible: number }[];
      };
      return e.outbound.find((d) => d.service === "svc")?.eligible ?? 0;
    };
    await waitFor("three endpoints", async () => await eligible() === 3);

    await t.step("50 rps per instance admits about 50 rps each; the rest get 429", async () => {
      await applyResources(cp.url, [{
        kind: "RateLimit",
        service: "svc",
        requests_per_second: 50,
        burst: 10,
      }]);
      await waitFor("the limit on every instance", async () => {
        const s = await limitsSeen(up);
        return s.size === 1 && s.has("50");
      });
      // Let the buckets refill to their burst, then count from a known state.
      await new Promise((r) => setTimeout(r, 500));
      for (const a of apps) a.hits = 0;
      const h = await hammer(up, 6000);
      assertEquals(h.other, 0);
      assert(h.limited > 0, "some requests were limited");
      console.log(
        `per instance: admitted ${apps.map((a) => a.hits).join(", ")} in ${
          h.seconds.toFixed(2)
        } s (expected ${(10 + 50 * h.seconds).toFixed(0)} each), ${h.limited} answered 429`,
      );
      for (const a of apps) {
        const expected = 10 + 50 * h.seconds;
        assert(
          Math.abs(a.hits - expected) <= expected * 0.1,
          `an instance admitted ${a.hits}, expected ${expected.toFixed(0)} ± 10% over ${
            h.seconds.toFixed(2)
          } s`,
        );
      }
      const sample = h.sample as Headers | null;
      assert(sample !== null);
      assertEquals(sample.get("x-skein-error"), "rate_limited");
      assertEquals(sample.get("retry-after"), "1");
      assertEquals(sample.get("x-ratelimit-limit"), "50");
      assertEquals(sample.get("x-ratelimit-remaining"), "0");
      assertEquals(sample.get("x-ratelimit-reset"), "1");
      const m = parsePrometheusText(await metricsText(proxies[0]!)).get("skein_rate_limited_total");
      assert((m?.samples[0]?.value ?? 0) > 0, "the callee counts what it limited");
    });

    await t.step("scope fleet: three instances admit about the limit together", async () => {
      await applyResources(cp.url, [{
        kind: "RateLimit",
        service: "svc",
        requests_per_second: 60,
        burst: 6,
        scope: "fleet",
      }]);
      await waitFor("every instance to take its third", async () => {
        const s = await limitsSeen(up);
        return s.size === 1 && s.has("20");
      });
      await new Promise((r) => setTimeout(r, 500));
      const h = await hammer(up, 6000);
      const expected = 6 + 60 * h.seconds;
      console.log(
        `fleet of 3: admitted ${h.ok} in ${h.seconds.toFixed(2)} s (expected ${
          expected.toFixed(0)
        })`,
      );
      assert(
        Math.abs(h.ok - expected) <= expected * 0.1,
        `the fleet admitted ${h.ok}, expected ${expected.toFixed(0)} ± 10% over ${
          h.seconds.toFixed(2)
        } s`,
      );
    });

    await t.step(
      "scope fleet: after one instance stops, the other two share the limit",
      async () => {
        await proxies[2]!.child.stop();
        await waitFor("two endpoints", async () => await eligible() === 2);
        await waitFor("the two instances to take their halves", async () => {
          const s = await limitsSeen(up);
          return s.size === 1 && s.has("30");
        });
        await new Promise((r) => setTimeout(r, 500));
        const h = await hammer(up, 6000);
        const expected = 6 + 60 * h.seconds;
        console.log(`fleet of 2: admitted ${h.ok} in ${h.seconds.toFixed(2)} s`);
        assert(
          Math.abs(h.ok - expected) <= expected * 0.1,
          `two instances admitted ${h.ok}, expected ${expected.toFixed(0)} ± 10% over ${
            h.seconds.toFixed(2)
          } s`,
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
