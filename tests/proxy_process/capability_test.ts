/**
 * Capability routing on real processes: an upstream by `capabilities:` and the
 * `x-skein-capability` header reach only instances declaring all asked capabilities, across
 * services, over mTLS with each service's own identity; none → 503 no_capable_endpoint.
 */
import { assert, assertEquals } from "../assert.ts";
import {
  type App,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitEligible,
} from "./helpers.ts";

async function call(addr: string, headers: Record<string, string> = {}) {
  const r = await fetch(`http://${addr}/`, { headers });
  return { status: r.status, body: await r.text(), headers: r.headers };
}

Deno.test("capability routing picks only instances declaring every asked capability", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-caps-" });
  const cp = await startControl(dir);
  const agents: [string, string[]][] = [
    ["summarizer", ["summarize", "translate"]],
    ["translator", ["translate"]],
    ["coder", ["code"]],
  ];
  const apps: App[] = agents.map(([n]) => startApp(n));
  const proxies: ProxyHandle[] = [];
  try {
    for (const [i, [name, capabilities]] of agents.entries()) {
      proxies.push(
        await startProxy(dir, {
          node: `vm-${name}`,
          control: [cp.url],
          services: [{ name, port: apps[i]!.port, capabilities }],
        }),
      );
    }
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      upstreams: [
        { capabilities: ["translate"], listen: "127.0.0.1:0" },
        { service: "coder", listen: "127.0.0.1:0" },
      ],
    });
    proxies.push(caller);
    const byCap = caller.upstreams["cap:translate"]!;
    const coder = caller.upstreams.coder!;
    assert(byCap !== undefined, JSON.stringify(caller.upstreams));
    await waitEligible(caller, "cap:translate", 2);

    await t.step("an upstream by capabilities balances over every capable service", async () => {
      const seen = new Map<string, number>();
      for (let i = 0; i < 40; i++) {
        const r = await call(byCap);
        assertEquals(r.status, 200);
        seen.set(r.body, (seen.get(r.body) ?? 0) + 1);
      }
      assertEquals([...seen.keys()].sort(), ["summarizer", "translator"]);
      assertEquals(apps[2]!.hits, 0, "the coder never gets a translate call");
    });

    await t.step("the header asks for capabilities on any upstream listener", async () => {
      for (let i = 0; i < 10; i++) {
        assertEquals((await call(coder)).body, "coder");
        assertEquals(
          (await call(coder, { "x-skein-capability": "summarize" })).body,
          "summarizer",
        );
        assertEquals(
          (await call(byCap, { "x-skein-capability": "translate, summarize" })).body,
          "summarizer",
        );
      }
    });

    await t.step("no capable instance: 503 no_capable_endpoint; a malformed ask: 400", async () => {
      const r = await call(coder, { "x-skein-capability": "fly" });
      assertEquals(r.status, 503);
      assertEquals(r.headers.get("x-skein-error"), "no_capable_endpoint");
      assert(r.body.includes("fly"), r.body);
      const bad = await call(coder, { "x-skein-capability": "a b" });
      assertEquals([bad.status, bad.headers.get("x-skein-error")], [400, "bad_request"]);
    });
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("capability routing holds with the access log on (each pick names its service)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-caps-log-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("summarizer"), startApp("other")];
  const proxies: ProxyHandle[] = [];
  try {
    // One callee proxy fronting two apps: only the destination header tells them apart.
    proxies.push(
      await startProxy(dir, {
        node: "vm-agents",
        control: [cp.url],
        services: [
          { name: "summarizer", port: apps[0]!.port, capabilities: ["summarize"] },
          { name: "other", port: apps[1]!.port },
        ],
      }),
    );
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      access_log: { path: `${dir}/access.log` },
      upstreams: [{ capabilities: ["summarize"], listen: "127.0.0.1:0" }],
    });
    proxies.push(caller);
    const byCap = caller.upstreams["cap:summarize"]!;
    await waitEligible(caller, "cap:summarize", 1);
    for (let i = 0; i < 5; i++) {
      const r = await call(byCap);
      assertEquals([r.status, r.body], [200, "summarizer"]);
    }
    assertEquals(apps[1]!.hits, 0);
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
