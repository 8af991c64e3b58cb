/**
 * Safe retries with no Policy at all, as a new user meets them: two instances of a service,
 * one instance's app killed, then (separately) one instance's proxy killed. A try that provably
 * never reached an application is retried on the other instance whatever its method, so GETs
 * and POSTs alike keep succeeding.
 */
import { assert, assertEquals } from "../assert.ts";
import {
  adminJson,
  type App,
  type ProxyHandle,
  startApp,
  startControl,
  startInstancesAndCaller,
  waitFor,
} from "./helpers.ts";

interface _Endpoints {
  outbound: { service: string; eligible: number; endpoints: { ejected: boolean }[] }[];
}

/** Sends `total` requests (GET and POST alternating) over `workers` loops; counts the 2xx. */
async function _load(
  addr: string,
  total: number,
  workers: number,
): Promise<{ ok: number; failures: string[] }> {
  let next = 0;
  let ok = 0;
  const failures: string[] = [];
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < total) {
      const i = next++;
      const post = i % 2 === 1;
      const r = await fetch(`http://${addr}/`, {
        method: post ? "POST" : "GET",
        body: post ? `order ${i}` : undefined,
      });
      await r.body?.cancel();
      if (r.status === 200) ok++;
      else {
        failures.push(
          `${post ? "POST" : "GET"} ${r.status} ${r.headers.get("x-skein-error")} from ${
            r.headers.get("x-skein-proxy")
          }`,
        );
      }
    }
  }));
  return { ok, failures };
}

Deno.test("with no Policy, a dead app or a dead proxy of one of two instances costs no request", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-dretry-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("svc-1"), startApp("svc-2"), startApp("svc-3")];
  const proxies: ProxyHandle[] = [];
  try {
    const caller = await startInstancesAndCaller(dir, cp.url, "svc", apps, proxies);
    const up = caller.upstreams.svc!;
    const eligible = async () => {
      const e = await adminJson(caller, "/endpoints") as unknown as _Endpoints;
      return e.outbound.find((d) => d.service === "svc")?.eligible ?? 0;
    };
    await waitFor("three endpoints", async () => await eligible() === 3);
    // Two instances in play: the third one's proxy goes first, before any load, so each step
    // below has one healthy and one broken instance. Stopping it cleanly deregisters it.
    await proxies[2]!.child.stop();
    await apps[2]!.close();
    await waitFor("two endpoints", async () => await eligible() === 2);
    // Warm the caller's sessions to both instances.
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`http://${up}/`);
      await r.body?.cancel();
      assertEquals(r.status, 200);
    }

    await t.step("one instance's app killed: >= 99.9% of 2000 GET+POST succeed", async () => {
      await apps[1]!.close();
      apps[0]!.hits = 0;
      const total = 2000;
      const { ok, failures } = await _load(up, total, 4);
      console.log(`app killed: ${ok} of ${total} succeeded`);
      assert(
        ok >= total * 0.999,
        `${ok} of ${total} succeeded; failures: ${failures.slice(0, 5).join("; ")}`,
      );
      // Every success came from the live app, and POSTs reached it once each at most.
      assert(apps[0]!.hits >= ok, `live app saw ${apps[0]!.hits} for ${ok} successes`);
    });

    await t.step("one instance's proxy killed: >= 99.9% of 2000 GET+POST succeed", async () => {
      // Bring the second app back on its port, then kill the first instance's proxy outright.
      const revived = startApp("svc-2", apps[1]!.port);
      apps[1] = revived;
      // Outlier detection holds the instance out for its 30 s base ejection, in every worker
      // of the caller that ejected it (the admin page reports it ejected while any does).
      await waitFor("the revived instance back in every caller worker", async () => {
        const e = await adminJson(caller, "/endpoints") as unknown as _Endpoints;
        const svc = e.outbound.find((d) => d.service === "svc");
        return svc?.eligible === 2 && svc.endpoints.every((x) => !x.ejected);
      }, 120_000);
      for (let i = 0; i < 20; i++) {
        const r = await fetch(`http://${up}/`);
        await r.body?.cancel();
        assertEquals(r.status, 200);
      }
      await proxies[0]!.child.stop("SIGKILL");
      const total = 2000;
      const { ok, failures } = await _load(up, total, 4);
      console.log(`proxy killed: ${ok} of ${total} succeeded`);
      assert(
        ok >= total * 0.999,
        `${ok} of ${total} succeeded; failures: ${failures.slice(0, 5).join("; ")}`,
      );
    });
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
