/**
 * Route mirroring on real processes: copies reach the mirror version with `x-skein-mirror: 1`
 * and a `-shadow` Host, bodies included; the primary keeps answering while the mirror hangs
 * without answering (copies over the bound are dropped and counted) and while it is dead.
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  applyResources,
  metricsText,
  type ProxyHandle,
  startControl,
  startInstancesAndCaller,
  waitEligible,
  waitFor,
} from "./helpers.ts";

interface Seen {
  method: string;
  host: string | null;
  mirror: string | null;
  body: string;
}

/** An app that records what reaches it; `hold` makes it hang until released. */
function recorder(name: string) {
  const seen: Seen[] = [];
  let gate: Promise<void> | null = null;
  let open: () => void = () => {};
  let answered = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    seen.push({
      method: r.method,
      host: r.headers.get("host"),
      mirror: r.headers.get("x-skein-mirror"),
      body: await r.text(),
    });
    if (gate !== null) await gate;
    answered++;
    return new Response(name);
  });
  return {
    port: server.addr.port,
    seen,
    get answered() {
      return answered;
    },
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      gate = null;
      open();
    },
    close: () => server.shutdown(),
  };
}

function counter(text: string, outcome: string): number {
  const f = parsePrometheusText(text).get("skein_mirror_requests_total");
  return f?.samples.filter((s) => s.labels.outcome === outcome)
    .reduce((n, s) => n + s.value, 0) ?? 0;
}

Deno.test("Route mirror: copies reach the mirror; a hanging or dead mirror never holds the primary", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-mirror-" });
  const cp = await startControl(dir);
  const primary = recorder("v1");
  const shadow = recorder("v2");
  const proxies: ProxyHandle[] = [];
  try {
    const caller = await startInstancesAndCaller(
      dir,
      cp.url,
      "svc",
      [primary, shadow],
      proxies,
      true,
    );
    const up = caller.upstreams.svc!;
    await waitEligible(caller, "svc", 2);
    await applyResources(cp.url, [{
      kind: "Route",
      service: "svc",
      rules: [{ backends: [{ version: "v1" }], mirror: { version: "v2", percent: 100 } }],
    }]);
    await waitFor("the caller to mirror", async () => {
      const r = await fetch(`http://${up}/probe`);
      await r.body?.cancel();
      return shadow.seen.some((s) => s.mirror === "1");
    });

    await t.step("copies carry x-skein-mirror: 1, a -shadow Host and the body", async () => {
      shadow.seen.length = 0;
      primary.seen.length = 0;
      for (let i = 0; i < 10; i++) {
        const r = await fetch(`http://${up}/orders`, { method: "POST", body: `order-${i}` });
        assertEquals([r.status, await r.text()], [200, "v1"]);
      }
      // Copies of the GET probes above may still arrive (fire-and-forget): count the POSTs.
      const copies = () => shadow.seen.filter((s) => s.method === "POST");
      await waitFor("ten copies", () => copies().length >= 10);
      assertEquals(copies().length, 10);
      for (const s of copies()) {
        assertEquals(s.mirror, "1");
        assert(s.host !== null && s.host.includes("-shadow"), `host ${s.host}`);
      }
      assertEquals(
        copies().map((s) => s.body).sort(),
        Array.from({ length: 10 }, (_, i) => `order-${i}`).sort(),
      );
      // The primary never sees a copy, and sees every original once.
      assertEquals(primary.seen.filter((s) => s.method === "POST").length, 10);
      assert(primary.seen.every((s) => s.mirror === null));
    });

    await t.step(
      "a mirror that never answers does not hold the primary; excess copies are dropped",
      async () => {
        shadow.hold();
        const answeredBefore = shadow.answered;
        const droppedBefore = counter(await metricsText(caller), "dropped_concurrency");
        for (let i = 0; i < 100; i++) {
          const r = await fetch(`http://${up}/`);
          assertEquals([r.status, await r.text()], [200, "v1"]);
        }
        // All 100 primaries answered while the mirror answered none of its copies.
        assertEquals(shadow.answered, answeredBefore);
        const dropped = counter(await metricsText(caller), "dropped_concurrency") - droppedBefore;
        assert(dropped > 0, "copies over the bound were dropped and counted");
        shadow.release();
      },
    );

    await t.step("a dead mirror changes nothing for the primary", async () => {
      await proxies[1]!.child.stop("SIGKILL");
      await shadow.close();
      let ok = 0;
      for (let i = 0; i < 200; i++) {
        const r = await fetch(`http://${up}/`, i % 2 ? { method: "POST", body: "x" } : {});
        if (r.status === 200 && await r.text() === "v1") ok++;
        else await r.body?.cancel();
      }
      assertEquals(ok, 200);
    });
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    await primary.close().catch(() => {});
    await shadow.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
