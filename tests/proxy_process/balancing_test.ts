/**
 * The share each balancing algorithm gives each endpoint, measured at the apps behind real
 * `skein proxy` processes, with bounds taken from the binomial distribution.
 *
 * The proxies draw from `Math.random` (a real process cannot be seeded), so every bound on a
 * random share is five standard deviations of the binomial count: a correct balancer fails it
 * with probability below 1e-6 per check, while a balancer that ignores weights or load misses
 * it by far more. Keys and bodies the test itself makes come from a seeded generator.
 */
import { assert, assertEquals } from "../assert.ts";
import {
  adminJson,
  type App,
  applyResources,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";

/** Standard deviations allowed around a binomial mean. */
const SIGMAS = 5;

/** Half-width of the allowed band around `n * p` for a Binomial(n, p) count. */
function binomialBound(n: number, p: number): number {
  return Math.ceil(SIGMAS * Math.sqrt(n * p * (1 - p)));
}

/** mulberry32: a small seeded generator for the keys the test sends. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `fn(0..n-1)` with at most `concurrency` calls in flight. */
async function runConcurrently(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** GETs through `addr` and returns the app name that answered; fails on anything but 200. */
async function hit(addr: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`http://${addr}/`, { headers });
  const body = await res.text();
  assertEquals(res.status, 200, `status ${res.status}: ${body}`);
  return body;
}

/**
 * Applies a Policy and waits until the caller's effective policy uses `algorithm`. `/endpoints`
 * asks every worker for a snapshot after the catalog was posted to all of them, so once it shows
 * the algorithm every worker has applied it and no measured request sees the old one.
 */
async function applyPolicy(
  cpUrl: string,
  caller: ProxyHandle,
  service: string,
  loadBalancer: Record<string, unknown>,
): Promise<void> {
  await applyResources(cpUrl, [{ kind: "Policy", service, load_balancer: loadBalancer }]);
  await waitFor(`the caller to balance ${service} with ${loadBalancer.algorithm}`, async () => {
    const cfg = await adminJson(caller, "/config") as {
      policies: Record<string, { load_balancer: { algorithm: string } }>;
    };
    const ep = await adminJson(caller, "/endpoints") as {
      outbound: { service: string; algorithm: string }[];
    };
    return cfg.policies[service]?.load_balancer.algorithm === loadBalancer.algorithm &&
      ep.outbound.find((d) => d.service === service)?.algorithm === loadBalancer.algorithm;
  });
}

function resetApps(apps: App[]): void {
  for (const a of apps) {
    a.hits = 0;
    a.delayMs = 0;
  }
}

Deno.test("each balancing algorithm spreads requests over real proxies as specified", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-balance-" });
  const cp = await startControl(dir);
  // "wrr" has two instances with weights 1 and 3; "lb" three instances of equal weight.
  const wrr: App[] = [startApp("wrr-1"), startApp("wrr-2")];
  const lb: App[] = [startApp("lb-1"), startApp("lb-2"), startApp("lb-3")];
  const proxies: ProxyHandle[] = [];
  try {
    // One proxy per instance, started in parallel (multi_service_test covers a shared proxy).
    const specs: { node: string; service: Record<string, unknown> }[] = [];
    for (let i = 0; i < 3; i++) {
      specs.push({
        node: `vm-lb-${i + 1}`,
        service: { name: "lb", id: `lb-${i + 1}`, port: lb[i]!.port },
      });
    }
    for (let i = 0; i < 2; i++) {
      specs.push({
        node: `vm-wrr-${i + 1}`,
        service: { name: "wrr", id: `wrr-${i + 1}`, port: wrr[i]!.port, weight: i * 2 + 1 },
      });
    }
    proxies.push(
      ...await Promise.all(
        specs.map((p) =>
          startProxy(dir, { node: p.node, control: [cp.url], services: [p.service], workers: 1 })
        ),
      ),
    );
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      upstreams: [
        { service: "wrr", listen: "127.0.0.1:0" },
        { service: "lb", listen: "127.0.0.1:0" },
      ],
    });
    proxies.push(caller);
    await waitFor("all endpoints in the caller", async () => {
      const e = await adminJson(caller, "/endpoints") as {
        outbound: { service: string; eligible: number }[];
      };
      return e.outbound.find((d) => d.service === "wrr")?.eligible === 2 &&
        e.outbound.find((d) => d.service === "lb")?.eligible === 3;
    });

    await t.step("round_robin gives weights 1 and 3 about 25% and 75%", async () => {
      await applyPolicy(cp.url, caller, "wrr", { algorithm: "round_robin" });
      resetApps(wrr);
      const n = 2000;
      await runConcurrently(n, 4, async () => void await hit(caller.upstreams.wrr!));
      assertEquals(wrr[0]!.hits + wrr[1]!.hits, n);
      // Smooth weighted round robin is exact within each worker; the binomial band is what any
      // correct weighted balancer meets, and an unweighted one (1000 each) misses it by ~9 sigma.
      const bound = binomialBound(n, 0.25);
      const light = wrr[0]!.hits;
      assert(
        Math.abs(light - n * 0.25) <= bound,
        `weight-1 instance got ${light} of ${n}, expected ${n * 0.25} ± ${bound}`,
      );
    });

    await t.step("p2c_least_request with equal weights gives each of 3 a third", async () => {
      await applyPolicy(cp.url, caller, "lb", { algorithm: "p2c_least_request" });
      resetApps(lb);
      const n = 1200;
      // One at a time, so no endpoint is ever busy and each pick is a uniform weighted draw.
      await runConcurrently(n, 1, async () => void await hit(caller.upstreams.lb!));
      const bound = binomialBound(n, 1 / 3);
      for (const a of lb) {
        assert(
          Math.abs(a.hits - n / 3) <= bound,
          `${lb.map((x) => x.hits)}: each should be ${n / 3} ± ${bound}`,
        );
      }
    });

    await t.step(
      "p2c_least_request sends clearly less to a slow endpoint under concurrency",
      async () => {
        resetApps(lb);
        lb[2]!.delayMs = 300; // far above a fast call, even one slowed by a busy machine
        const n = 600;
        await runConcurrently(n, 12, async () => void await hit(caller.upstreams.lb!));
        assertEquals(lb.reduce((s, a) => s + a.hits, 0), n);
        // An equal split would be 200 ± 58; a least-request balancer keeps the slow endpoint's
        // queue no longer than the fast ones', so its share falls far below a third.
        assert(lb[2]!.hits < n * 0.2, `slow endpoint got ${lb[2]!.hits} of ${n}`);
      },
    );

    await t.step("ewma gives a slow endpoint a minority share", async () => {
      await applyPolicy(cp.url, caller, "lb", { algorithm: "ewma" });
      resetApps(lb);
      lb[0]!.delayMs = 300; // far above a fast call, even one slowed by a busy machine
      const n = 400;
      await runConcurrently(n, 4, async () => void await hit(caller.upstreams.lb!));
      assertEquals(lb.reduce((s, a) => s + a.hits, 0), n);
      // Once measured, the slow endpoint costs far more than the others, so it only wins a
      // draw while its estimate is still the initial penalty of a new endpoint.
      assert(lb[0]!.hits < n * 0.2, `slow endpoint got ${lb[0]!.hits} of ${n}`);
      assert(lb[1]!.hits > lb[0]!.hits && lb[2]!.hits > lb[0]!.hits, `${lb.map((a) => a.hits)}`);
    });

    await t.step("ring_hash keeps a header value on one instance and spreads many", async () => {
      await applyPolicy(cp.url, caller, "lb", {
        algorithm: "ring_hash",
        hash_on: { header: "x-user" },
      });
      resetApps(lb);
      const rand = seeded(0x5ee1);
      const keys = Array.from(
        { length: 300 },
        (_, i) => `user-${i}-${Math.floor(rand() * 2 ** 32).toString(16)}`,
      );
      const owner = new Map<string, string>();
      const perApp = new Map<string, number>();
      await runConcurrently(keys.length, 6, async (i) => {
        const app = await hit(caller.upstreams.lb!, { "x-user": keys[i]! });
        owner.set(keys[i]!, app);
        perApp.set(app, (perApp.get(app) ?? 0) + 1);
      });
      // Every instance owns a fair arc of the ring: 160 points each puts its share near a third,
      // and 300 keys add binomial noise (± 41 at 5 sigma); 15% leaves room for both.
      assertEquals([...perApp.keys()].sort(), ["lb-1", "lb-2", "lb-3"]);
      for (const [app, c] of perApp) {
        assert(c >= keys.length * 0.15, `${app} owns only ${c} of ${keys.length} keys`);
      }
      // Repeats of the first 40 keys, interleaved and concurrent so they arrive on different
      // connections (and workers), land where the key first went.
      const repeats = keys.slice(0, 40).flatMap((k) => [k, k, k, k, k]);
      const shuffled = repeats.map((k) => ({ k, r: rand() })).sort((a, b) => a.r - b.r);
      await runConcurrently(shuffled.length, 8, async (i) => {
        const k = shuffled[i]!.k;
        assertEquals(await hit(caller.upstreams.lb!, { "x-user": k }), owner.get(k), k);
      });
      assertEquals(lb.reduce((s, a) => s + a.hits, 0), keys.length + repeats.length);
    });
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of [...wrr, ...lb]) await a.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
