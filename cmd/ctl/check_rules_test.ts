import { assert, assertEquals } from "../../tests/assert.ts";
import { checkFindings, type CheckSnapshot, type NodeView } from "./check_rules.ts";

const NOW = 1_800_000_000_000;

function node(name: string, over: Partial<NodeView> = {}): NodeView {
  return {
    node: name,
    api: `https://${name}:7400`,
    voter: true,
    health: { role: "follower", leader: "cp-1", time: NOW, version: "0.1.0" },
    localMid: NOW,
    ...over,
  };
}

function snap(over: Partial<CheckSnapshot> = {}): CheckSnapshot {
  return {
    nodes: [node("cp-1"), node("cp-2"), node("cp-3")],
    roots: [{ notAfter: NOW + 365 * 86_400_000, active: true }],
    proxies: { now: NOW, list: [] },
    services: { ledger: [{ version: "v1", health: "passing" }] },
    resources: [],
    ...over,
  };
}

Deno.test("a healthy snapshot has no findings", () => {
  assertEquals(checkFindings(snap()), []);
});

Deno.test("lost quorum, no leader, clock skew and version skew between control nodes", () => {
  const down = { health: null, error: "connection refused" };
  const f = checkFindings(snap({
    nodes: [node("cp-1"), node("cp-2", down), node("cp-3", down)],
  })).map((x) => x.problem);
  assertEquals(f.length, 3, f.join("\n"));
  assert(f[2]!.includes("only 1 of 3 voting control nodes answer"), f[2]);
  const noLeader = checkFindings(snap({
    nodes: [node("cp-1", { health: { leader: null, time: NOW } })],
  }));
  assert(noLeader[0]!.problem.includes("no control node knows a leader"));
  const skew = checkFindings(snap({
    nodes: [node("cp-1"), node("cp-2", { health: { leader: "cp-1", time: NOW + 5000 } })],
  }));
  assert(skew[0]!.problem.includes("clocks of control nodes cp-1 and cp-2 differ by 5.0 s"));
  assert(skew[0]!.fix.includes("chrony"));
  const versions = checkFindings(snap({
    nodes: [
      node("cp-1"),
      node("cp-2", { health: { leader: "cp-1", time: NOW, version: "0.2.0" } }),
    ],
  }));
  assert(versions[0]!.problem.includes("different skein versions"));
});

Deno.test("CA roots near or past expiry", () => {
  const soon = checkFindings(snap({ roots: [{ notAfter: NOW + 5 * 86_400_000, active: true }] }));
  assert(soon[0]!.problem.includes("expires in 5 days"), soon[0]!.problem);
  assert(soon[0]!.fix.includes("skein ctl ca rotate"));
  const gone = checkFindings(snap({ roots: [{ notAfter: NOW - 1000, active: false }] }));
  assert(gone[0]!.problem.includes("a trusted CA root expired"));
});

Deno.test("an offline root's intermediate near or past expiry says how to sign the next one", () => {
  const far = { notAfter: NOW + 3650 * 86_400_000, active: true };
  const soon = checkFindings(snap({
    roots: [far, { notAfter: NOW + 5 * 86_400_000, active: true, intermediate: true }],
  }));
  assertEquals(soon.length, 1);
  assert(soon[0]!.problem.includes("CA intermediate expires in 5 days"), soon[0]!.problem);
  assert(soon[0]!.fix.includes("skein ca intermediate"));
  const gone = checkFindings(snap({
    roots: [far, { notAfter: NOW - 1000, active: true, intermediate: true }],
  }));
  assert(gone[0]!.problem.includes("CA intermediate expired"), gone[0]!.problem);
  assertEquals(checkFindings(snap({ roots: [far, { ...far, intermediate: true }] })).length, 0);
});

Deno.test("proxies: silent, expired, expiring, other version, unenforced settings", () => {
  const base = {
    version: "0.1.0",
    cert_not_after: NOW + 86_400_000,
    unenforced: [],
    services: ["ledger"],
    last_heartbeat: NOW,
  };
  const f = checkFindings(snap({
    proxies: {
      now: NOW,
      list: [
        { ...base, node: "vm-1", last_heartbeat: NOW - 600_000 },
        { ...base, node: "vm-2", cert_not_after: NOW - 1 },
        { ...base, node: "vm-3", cert_not_after: NOW + 600_000 },
        { ...base, node: "vm-4", version: "0.0.9" },
        { ...base, node: "vm-5", unenforced: ["access_log"] },
        { ...base, node: "vm-6" },
      ],
    },
  })).map((x) => x.problem);
  assertEquals(f.length, 5, f.join("\n"));
  assert(f[0]!.includes("vm-1") && f[0]!.includes("10 min ago"));
  assert(f[1]!.includes("vm-2") && f[1]!.includes("expired"));
  assert(f[2]!.includes("vm-3") && f[2]!.includes("expiring in 10 min"));
  assert(f[3]!.includes("vm-4 (ledger) runs skein 0.0.9"));
  assert(f[4]!.includes("vm-5") && f[4]!.includes("access_log"));
});

Deno.test("resources for unknown services and routes to versions with no instance", () => {
  const f = checkFindings(snap({
    resources: [
      { kind: "Policy", service: "gone" },
      {
        kind: "Route",
        service: "ledger",
        rules: [
          { backends: [{ version: "v1", weight: 95 }, { version: "v2", weight: 5 }] },
          { backends: [{ version: "v3", weight: 0 }, { version: "v1" }] },
        ],
      },
      { kind: "ExternalService", name: "stripe", hosts: ["api.stripe.com:443"] },
    ],
  })).map((x) => x.problem);
  assertEquals(f.length, 2, f.join("\n"));
  assert(f[0]!.includes("Policy/gone is for service gone, which has no registered instance"));
  assert(f[1]!.includes("Route/ledger rules[0] sends 5% to version v2"));
});
