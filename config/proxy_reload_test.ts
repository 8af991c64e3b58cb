import { assertEquals } from "../tests/assert.ts";
import { ProxyConfig } from "./proxy_schema.ts";
import { planProxyReload } from "./proxy_reload.ts";

const base = {
  node: "vm-1",
  control: ["https://127.0.0.1:7000"],
  services: [{ name: "billing", port: 8080 }],
  upstreams: [
    { service: "ledger", listen: "127.0.0.1:9001" },
    { service: "audit", listen: "127.0.0.1:9002", protocol: "tcp" },
  ],
};
const cfg = (over: Record<string, unknown> = {}) => ProxyConfig.parse({ ...base, ...over });

Deno.test("reload plan: nothing changed, nothing to do", () => {
  const p = planProxyReload(cfg(), cfg());
  assertEquals([p.add, p.remove, p.limits, p.needsRestart, p.refused, p.applied], [
    [],
    [],
    null,
    [],
    [],
    [],
  ]);
  assertEquals(p.running, cfg());
});

Deno.test("reload plan: upstreams added, removed and changed", () => {
  const next = cfg({
    upstreams: [
      { service: "ledger", listen: "127.0.0.1:9011" },
      { service: "ranker", listen: "127.0.0.1:9003" },
    ],
  });
  const p = planProxyReload(cfg(), next);
  assertEquals(p.remove, ["ledger", "audit"]);
  assertEquals(p.add.map((u) => `${u.service} ${u.listen.port}`), [
    "ledger 9011",
    "ranker 9003",
  ]);
  assertEquals(p.needsRestart, []);
  assertEquals(p.running.upstreams, next.upstreams);
});

Deno.test("reload plan: reloadable limits apply, the others need a restart", () => {
  const p = planProxyReload(
    cfg(),
    cfg({ limits: { max_headers: 50, tcp_idle_timeout: "5m" }, drain_timeout: "3s" }),
  );
  assertEquals(p.limits?.max_headers, 50);
  // Not applied: it keeps its running value.
  assertEquals(p.running.limits.tcp_idle_timeout, cfg().limits.tcp_idle_timeout);
  assertEquals(p.running.drain_timeout, 3000);
  assertEquals(p.needsRestart, ["limits.tcp_idle_timeout"]);
  assertEquals(p.applied, ["limits.max_headers=50", "drain_timeout=3000"]);
});

Deno.test("reload plan: keys that cannot change at run time are named and keep their value", () => {
  const next = cfg({
    node: "vm-2",
    inbound: "0.0.0.0:16443",
    data_dir: "/tmp/x",
    upstreams: [...base.upstreams, { service: "ranker", listen: "127.0.0.1:9003" }],
  });
  const p = planProxyReload(cfg(), next);
  assertEquals(p.needsRestart, ["data_dir", "inbound", "node"]);
  assertEquals(p.running.node, "vm-1");
  assertEquals(p.running.data_dir, cfg().data_dir);
  assertEquals(p.add.map((u) => u.service), ["ranker"]);
});

Deno.test("reload plan: local services added, changed and removed", () => {
  const before = cfg({
    services: [{ name: "billing", port: 8080 }, { name: "audit", port: 8082 }],
  });
  const next = cfg({
    services: [{ name: "billing", port: 8090 }, { name: "shop", port: 8081 }],
    upstreams: [...base.upstreams, { service: "ranker", listen: "127.0.0.1:9003", caller: "shop" }],
  });
  const p = planProxyReload(before, next);
  assertEquals(p.needsRestart, []);
  assertEquals(p.services?.register.map((s) => `${s.name}:${s.port}`), [
    "billing:8090",
    "shop:8081",
  ]);
  assertEquals(p.services?.deregister.map((s) => s.name), ["audit"]);
  assertEquals(p.services?.newNames, ["shop"]);
  assertEquals(p.services?.locals, [
    { name: "billing", port: 8090, protocol: "http" },
    { name: "shop", port: 8081, protocol: "http" },
  ]);
  // The new service's upstream may open: its caller runs once the plan applies.
  assertEquals(p.add.map((u) => u.service), ["ranker"]);
  assertEquals(p.running.services, next.services);
});

Deno.test("reload plan: a service's protocol changes at run time and reaches the data plane", () => {
  const before = cfg({
    services: [{ name: "billing", port: 8080 }, { name: "ledger", port: 8081 }],
  });
  const next = cfg({
    services: [{ name: "billing", port: 8080 }, { name: "ledger", port: 8081, protocol: "grpc" }],
  });
  const p = planProxyReload(before, next);
  assertEquals(p.needsRestart, []);
  assertEquals(p.services?.locals, [
    { name: "billing", port: 8080, protocol: "http" },
    { name: "ledger", port: 8081, protocol: "grpc" },
  ]);
});

Deno.test("reload plan: changing the first service needs a restart; its callers wait", () => {
  const next = cfg({
    services: [{ name: "shop", port: 8081 }, { name: "billing", port: 8080 }],
    upstreams: [
      { service: "ledger", listen: "127.0.0.1:9001", caller: "shop" },
      { service: "audit", listen: "127.0.0.1:9002", protocol: "tcp" },
    ],
  });
  const p = planProxyReload(cfg(), next);
  assertEquals(p.needsRestart, ["services"]);
  assertEquals(p.services, null);
  assertEquals(p.refused.length, 1);
  // The file no longer has the plain ledger listener; its replacement cannot open yet.
  assertEquals([p.add, p.remove], [[], ["ledger"]]);
  assertEquals(p.running.upstreams.map((u) => u.service), ["audit"]);
  assertEquals(p.running.services, cfg().services);
});
