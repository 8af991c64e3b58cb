import assert from "node:assert/strict";
import { type Instance, InstanceSchema } from "./instance.ts";
import { decodeCommand, type RegistryCommand } from "./commands.ts";
import {
  canonicalJson,
  MAX_DELETED_RESOURCES_KEPT,
  MAX_INSTANCES_PER_SERVICE,
  MAX_RESOURCES,
  MAX_RESOURCES_PER_KIND,
  MAX_REVISIONS_KEPT,
  RegistryState,
  sameInstance,
  SnapshotError,
} from "./state.ts";
import { seededRandom } from "../../tests/seeded_random.ts";

function inst(service: string, id: string, extra: Partial<Instance> = {}): Instance {
  return InstanceSchema.parse({ service, id, address: "10.0.0.1", port: 8080, ...extra });
}

const reg = (i: Instance): RegistryCommand => ({ type: "register_instance", instance: i });
const policy = (service: string, timeout: string) => ({
  kind: "Policy",
  name: service,
  resource: { kind: "Policy", service, timeout },
});

Deno.test("RegistryState registers, counts by health, filters and deregisters", () => {
  const s = new RegistryState();
  assert.ok(s.apply(1, reg(inst("api", "a1", { zone: "z1", capabilities: ["charge"] }))).ok);
  assert.ok(s.apply(2, reg(inst("api", "a2", { zone: "z2" }))).ok);
  assert.ok(s.apply(3, reg(inst("db", "d1"))).ok);
  const h = s.apply(4, {
    type: "set_health",
    changes: [
      { service: "api", id: "a2", health: "critical" },
      { service: "api", id: "gone", health: "critical" },
    ],
  });
  assert.deepEqual(h, {
    ok: true,
    index: 4,
    value: { type: "set_health", changed: 1, unknown: 1 },
  });
  assert.deepEqual(s.listServices(), [
    { name: "api", instances: 2, passing: 1, warning: 0, critical: 1 },
    { name: "db", instances: 1, passing: 1, warning: 0, critical: 0 },
  ]);
  assert.deepEqual(s.instances("api", { healthy: true }).map((i) => i.id), ["a1"]);
  assert.deepEqual(s.instances("api", { zone: "z2" }).map((i) => i.id), ["a2"]);
  assert.deepEqual(s.instances("api", { capability: "charge" }).map((i) => i.id), ["a1"]);
  assert.deepEqual(s.instances("nope"), []);
  assert.equal(s.index, 4);
  const d = s.apply(5, { type: "deregister_instance", service: "db", id: "d1" });
  assert.ok(d.ok);
  assert.equal(s.hasService("db"), false);
  assert.equal(s.index, 5);
});

Deno.test("RegistryState leaves state and catalog index unchanged on refused or no-op commands", () => {
  const s = new RegistryState();
  s.apply(1, reg(inst("api", "a1")));
  const before = new TextDecoder().decode(s.snapshot());
  const r1 = s.apply(2, { type: "deregister_instance", service: "api", id: "zzz" });
  assert.equal(r1.ok, false);
  assert.equal(!r1.ok && r1.error.code, "not_found");
  const r2 = s.apply(3, { type: "bogus" } as unknown as RegistryCommand);
  assert.equal(!r2.ok && r2.error.code, "invalid_command");
  const r3 = s.apply(4, reg(inst("api", "a1")));
  assert.ok(r3.ok && r3.value.type === "register_instance" && !r3.value.changed);
  const r4 = s.apply(5, { type: "delete_resource", kind: "Policy", name: "x" });
  assert.equal(!r4.ok && r4.error.code, "not_found");
  assert.equal(s.index, 1);
  assert.equal(s.appliedIndex, 5);
  const after = new TextDecoder().decode(s.snapshot());
  assert.equal(after.replace(/"applied_index":\d+/, ""), before.replace(/"applied_index":\d+/, ""));
});

Deno.test("RegistryState.apply throws on a non-increasing index (driver bug)", () => {
  const s = new RegistryState();
  s.apply(3, reg(inst("api", "a1")));
  assert.throws(() => s.apply(3, reg(inst("api", "a2"))), /out of order/);
  assert.throws(() => s.apply(2, reg(inst("api", "a2"))), /out of order/);
});

Deno.test("RegistryState resources: created/updated/unchanged, delete, history and rollback", () => {
  const s = new RegistryState();
  let r = s.apply(1, { type: "put_resource", items: [policy("api", "1s"), policy("db", "2s")] });
  assert.ok(r.ok && r.value.type === "put_resource");
  assert.deepEqual(r.value.items.map((i) => i.outcome), ["created", "created"]);
  // Key order differs but the document is the same: unchanged.
  r = s.apply(2, {
    type: "put_resource",
    items: [
      { kind: "Policy", name: "api", resource: { timeout: "1s", service: "api", kind: "Policy" } },
      policy("db", "3s"),
    ],
  });
  assert.ok(r.ok && r.value.type === "put_resource");
  assert.deepEqual(r.value.items.map((i) => [i.outcome, i.revision]), [["unchanged", 1], [
    "updated",
    2,
  ]]);
  assert.equal(s.getResource("Policy", "db")?.resource.timeout, "3s");
  assert.equal(s.listResources("Policy").length, 2);
  assert.equal(s.listResources("Route").length, 0);

  assert.ok(s.apply(3, { type: "delete_resource", kind: "Policy", name: "db" }).ok);
  assert.equal(s.getResource("Policy", "db"), undefined);
  assert.deepEqual(
    s.history("Policy", "db")?.map((h) => [h.revision, h.resource?.timeout ?? null]),
    [
      [1, "2s"],
      [2, "3s"],
      [3, null],
    ],
  );
  const bad = s.apply(4, { type: "rollback_resource", kind: "Policy", name: "db", revision: 3 });
  assert.equal(!bad.ok && bad.error.code, "invalid_revision");
  const missing = s.apply(5, {
    type: "rollback_resource",
    kind: "Policy",
    name: "db",
    revision: 9,
  });
  assert.equal(!missing.ok && missing.error.code, "revision_not_found");
  const rb = s.apply(6, { type: "rollback_resource", kind: "Policy", name: "db", revision: 1 });
  assert.deepEqual(rb, {
    ok: true,
    index: 6,
    value: { type: "rollback_resource", outcome: "updated", revision: 4 },
  });
  assert.equal(s.getResource("Policy", "db")?.resource.timeout, "2s");
  assert.equal(s.index, 6);
  // A put after rollback to identical content is unchanged.
  r = s.apply(7, { type: "put_resource", items: [policy("db", "2s")] });
  assert.ok(r.ok && r.value.type === "put_resource" && r.value.items[0]?.outcome === "unchanged");
});

Deno.test("RegistryState keeps only the last MAX_REVISIONS_KEPT revisions", () => {
  const s = new RegistryState();
  const n = MAX_REVISIONS_KEPT + 5;
  for (let i = 1; i <= n; i++) {
    s.apply(i, { type: "put_resource", items: [policy("api", `${i}s`)] });
  }
  const h = s.history("Policy", "api")!;
  assert.equal(h.length, MAX_REVISIONS_KEPT);
  assert.equal(h[0]?.revision, n - MAX_REVISIONS_KEPT + 1);
  assert.equal(h.at(-1)?.revision, n);
  const r = s.apply(n + 1, { type: "rollback_resource", kind: "Policy", name: "api", revision: 1 });
  assert.equal(!r.ok && r.error.code, "revision_not_found");
});

Deno.test("RegistryState returned records cannot be mutated from outside", () => {
  const s = new RegistryState();
  const i = inst("api", "a1");
  s.apply(1, reg(i));
  i.port = 1; // the caller's object is not shared
  const got = s.instance("api", "a1")!;
  assert.equal(got.port, 8080);
  assert.throws(() => {
    (got as { port: number }).port = 2;
  });
});

Deno.test("RegistryState snapshot/restore round-trips byte for byte", () => {
  const s = new RegistryState();
  s.apply(1, reg(inst("web", "w1", { meta: { b: "2", a: "1" }, tags: ["x"] })));
  s.apply(2, reg(inst("api", "a1")));
  s.apply(3, { type: "put_resource", items: [policy("api", "1s")] });
  s.apply(4, { type: "put_resource", items: [policy("api", "2s")] });
  s.apply(5, { type: "delete_resource", kind: "Policy", name: "api" });
  s.apply(6, { type: "deregister_instance", service: "nope", id: "x" });
  const bytes = s.snapshot();
  const r = RegistryState.restore(bytes);
  assert.deepEqual(r.snapshot(), bytes);
  assert.equal(r.appliedIndex, 6);
  assert.equal(r.index, 5);
  assert.deepEqual(r.catalog(), s.catalog());
  // The restored state keeps applying identically.
  const cmd: RegistryCommand = {
    type: "rollback_resource",
    kind: "Policy",
    name: "api",
    revision: 1,
  };
  assert.deepEqual(r.apply(7, cmd), s.apply(7, cmd));
  assert.deepEqual(r.snapshot(), s.snapshot());
});

Deno.test("RegistryState.restore rejects invalid snapshots", () => {
  const enc = new TextEncoder();
  const good = JSON.parse(new TextDecoder().decode(new RegistryState().snapshot()));
  const bad = [
    "not json",
    JSON.stringify({ ...good, version: 99 }),
    JSON.stringify({ ...good, index: 5, applied_index: 1 }),
    JSON.stringify({ ...good, instances: [{ id: "a" }] }),
    JSON.stringify({
      ...good,
      instances: [inst("a", "1"), inst("a", "1")],
    }),
    JSON.stringify({
      ...good,
      resources: [{
        kind: "Policy",
        name: "a",
        revisions: [{ revision: 2, index: 1, resource: {} }, {
          revision: 1,
          index: 2,
          resource: {},
        }],
      }],
    }),
  ];
  for (const b of bad) assert.throws(() => RegistryState.restore(enc.encode(b)), SnapshotError, b);
});

Deno.test("RegistryState.catalog lists services, instances and resource documents", () => {
  const s = new RegistryState();
  s.apply(1, reg(inst("b", "2")));
  s.apply(2, reg(inst("b", "1")));
  s.apply(3, reg(inst("a", "1")));
  s.apply(4, { type: "put_resource", items: [policy("b", "1s")] });
  const c = s.catalog();
  assert.equal(c.index, 4);
  assert.deepEqual(Object.keys(c.services), ["a", "b"]);
  assert.deepEqual(c.services.b?.map((i) => i.id), ["1", "2"]);
  assert.deepEqual(c.resources, [{ kind: "Policy", service: "b", timeout: "1s" }]);
});

function _randomCommand(r: () => number): RegistryCommand {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const svc = pick(["api", "db", "web"]);
  const id = pick(["1", "2", "3"]);
  switch (pick(["reg", "dereg", "health", "put", "del", "rb"] as const)) {
    case "reg":
      return reg(inst(svc, id, { port: 1 + Math.floor(r() * 3), zone: pick(["a", "b"]) }));
    case "dereg":
      return { type: "deregister_instance", service: svc, id };
    case "health":
      return {
        type: "set_health",
        changes: [{ service: svc, id, health: pick(["passing", "warning", "critical"] as const) }],
      };
    case "put":
      return { type: "put_resource", items: [policy(svc, pick(["1s", "2s", "3s"]))] };
    case "del":
      return { type: "delete_resource", kind: "Policy", name: svc };
    case "rb":
      return {
        type: "rollback_resource",
        kind: "Policy",
        name: svc,
        revision: 1 + Math.floor(r() * 30),
      };
  }
}

Deno.test("RegistryState is deterministic: replicas and a restored copy agree on every result", () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const r = seededRandom(seed);
    const a = new RegistryState();
    const b = new RegistryState();
    let c: RegistryState | null = null;
    for (let i = 1; i <= 300; i++) {
      const cmd = _randomCommand(r);
      const ra = a.apply(i, cmd);
      assert.deepEqual(b.apply(i, structuredClone(cmd)), ra, `seed ${seed} index ${i}`);
      if (i === 150) c = RegistryState.restore(a.snapshot());
      if (c && i > 150) assert.deepEqual(c.apply(i, cmd), ra, `seed ${seed} index ${i}`);
      assert.ok(a.index <= i);
    }
    assert.deepEqual(b.snapshot(), a.snapshot(), `seed ${seed}`);
    assert.deepEqual(c!.snapshot(), a.snapshot(), `seed ${seed}`);
  }
});

Deno.test("sameInstance() judges equality exactly as canonical JSON does", () => {
  const base = inst("api", "a1", { meta: { a: "1", b: "2" }, tags: ["x", "y"] });
  const cases: [string, Instance, boolean][] = [
    ["identical", inst("api", "a1", { meta: { a: "1", b: "2" }, tags: ["x", "y"] }), true],
    [
      "meta keys reordered",
      inst("api", "a1", { meta: { b: "2", a: "1" }, tags: ["x", "y"] }),
      true,
    ],
    [
      "meta value differs",
      inst("api", "a1", { meta: { a: "1", b: "3" }, tags: ["x", "y"] }),
      false,
    ],
    ["meta key missing", inst("api", "a1", { meta: { a: "1" }, tags: ["x", "y"] }), false],
    ["meta key renamed", inst("api", "a1", { meta: { a: "1", c: "2" }, tags: ["x", "y"] }), false],
    ["tags reordered", inst("api", "a1", { meta: { a: "1", b: "2" }, tags: ["y", "x"] }), false],
    ["capability added", { ...base, capabilities: ["c"] }, false],
    ["port", { ...base, port: 8081 }, false],
    ["weight", { ...base, weight: 2 }, false],
    ["health", { ...base, health: "critical" }, false],
    ["zone", { ...base, zone: "z" }, false],
    ["node", { ...base, node: "n" }, false],
    ["version", { ...base, version: "v2" }, false],
    ["address", { ...base, address: "10.0.0.2" }, false],
    ["id", { ...base, id: "a2" }, false],
  ];
  for (const [name, other, same] of cases) {
    assert.equal(sameInstance(base, other), same, name);
    assert.equal(canonicalJson(base) === canonicalJson(other), same, `canonicalJson: ${name}`);
  }
});

Deno.test("re-registering an instance with reordered meta keys is not a change", () => {
  const s = new RegistryState();
  assert.ok(s.apply(1, reg(inst("api", "a1", { meta: { a: "1", b: "2" } }))).ok);
  const r = s.apply(2, reg(inst("api", "a1", { meta: { b: "2", a: "1" } })));
  assert.ok(r.ok && r.value.type === "register_instance" && !r.value.changed);
  assert.equal(s.index, 1);
});

Deno.test("applyValidated() stores the decoded command frozen, and apply() still refuses bad ones", () => {
  const s = new RegistryState();
  const cmd = decodeCommand(
    new TextEncoder().encode(JSON.stringify({
      type: "register_instance",
      instance: { service: "api", id: "a1", address: "10.0.0.1", port: 80 },
    })),
  );
  const r = s.applyValidated(1, cmd);
  assert.ok(r.ok && r.value.type === "register_instance");
  // Defaults come from the decode, not from the apply.
  assert.equal(s.instance("api", "a1")?.weight, 1);
  assert.ok(Object.isFrozen(s.instance("api", "a1")));
  const bad = s.apply(2, {
    type: "register_instance",
    instance: { ...inst("api", "a2"), port: 0 },
  });
  assert.ok(!bad.ok && bad.error.code === "invalid_command");
  assert.equal(s.appliedIndex, 2);
  assert.equal(s.instance("api", "a2"), undefined);
  assert.throws(() => s.applyValidated(2, cmd), /out of order/);
});

Deno.test("allInstances() walks every registered instance of every service, live", () => {
  const s = new RegistryState();
  s.apply(1, reg(inst("api", "a1")));
  s.apply(2, reg(inst("api", "a2")));
  s.apply(3, reg(inst("db", "d1")));
  const ids = () => [...s.allInstances()].map((i) => `${i.service}/${i.id}/${i.health}`).sort();
  assert.deepEqual(ids(), ["api/a1/passing", "api/a2/passing", "db/d1/passing"]);
  s.apply(4, { type: "deregister_instance", service: "api", id: "a1" });
  s.apply(5, { type: "set_health", changes: [{ service: "db", id: "d1", health: "critical" }] });
  assert.deepEqual(ids(), ["api/a2/passing", "db/d1/critical"]);
  assert.deepEqual([...new RegistryState().allInstances()], []);
});

Deno.test("one service cannot register more than MAX_INSTANCES_PER_SERVICE instances", () => {
  const s = new RegistryState();
  let index = 0;
  for (let i = 0; i < MAX_INSTANCES_PER_SERVICE; i++) {
    const r = s.apply(++index, reg(inst("payments", `p${i}`)));
    assert.ok(r.ok);
  }
  const over = s.apply(++index, reg(inst("payments", "one-more")));
  assert.ok(!over.ok && over.error.code === "too_many_instances");
  assert.equal(s.instances("payments").length, MAX_INSTANCES_PER_SERVICE);
  // Updating one it has, and another service, still work.
  assert.ok(s.apply(++index, reg(inst("payments", "p0", { port: 9090 }))).ok);
  assert.ok(s.apply(++index, reg(inst("ledger", "l0"))).ok);
});

/** Puts `n` resources of `kind` named `prefix-<i>` in commands of 100; returns the next index. */
function putMany(s: RegistryState, index: number, kind: string, prefix: string, n: number): number {
  for (let i = 0; i < n; i += 100) {
    const items = [];
    for (let j = i; j < Math.min(n, i + 100); j++) {
      items.push({ kind, name: `${prefix}-${j}`, resource: { kind, service: `${prefix}-${j}` } });
    }
    const r = s.apply(index++, { type: "put_resource", items });
    assert.ok(r.ok, JSON.stringify(r));
  }
  return index;
}

Deno.test("RegistryState caps current resources per kind, all or nothing, and counts rollbacks", () => {
  const s = new RegistryState();
  let index = putMany(s, 1, "Policy", "p", MAX_RESOURCES_PER_KIND - 1);
  const before = JSON.stringify(s.listResources());
  // One slot left: a command creating two (one update rides along) is refused whole.
  const r = s.apply(index++, {
    type: "put_resource",
    items: [policy("p-0", "9s"), policy("new-a", "1s"), policy("new-b", "1s")],
  });
  assert.equal(!r.ok && r.error.code, "resource_limit");
  assert.match(!r.ok ? r.error.message : "", /kind Policy has 4095 resources and this adds 2/);
  assert.equal(
    JSON.stringify(s.listResources()),
    before,
    "nothing of a refused command is applied",
  );
  // Updates of existing resources and other kinds still work.
  assert.ok(s.apply(index++, { type: "put_resource", items: [policy("p-0", "9s")] }).ok);
  assert.ok(s.apply(index++, { type: "put_resource", items: [policy("last", "1s")] }).ok);
  assert.equal(s.listResources("Policy").length, MAX_RESOURCES_PER_KIND);
  // A deleted resource brought back by rollback counts too.
  assert.ok(s.apply(index++, { type: "delete_resource", kind: "Policy", name: "last" }).ok);
  assert.ok(s.apply(index++, { type: "put_resource", items: [policy("other", "1s")] }).ok);
  const rb = s.apply(index++, {
    type: "rollback_resource",
    kind: "Policy",
    name: "last",
    revision: 1,
  });
  assert.equal(!rb.ok && rb.error.code, "resource_limit");
  assert.equal(s.getResource("Policy", "last"), undefined);
});

Deno.test("RegistryState caps current resources of all kinds together", () => {
  const s = new RegistryState();
  let index = 1;
  const kinds = Math.ceil(MAX_RESOURCES / MAX_RESOURCES_PER_KIND);
  for (let k = 0; k < kinds; k++) {
    index = putMany(
      s,
      index,
      `Kind${k}`,
      "r",
      Math.min(MAX_RESOURCES_PER_KIND, MAX_RESOURCES - k * MAX_RESOURCES_PER_KIND),
    );
  }
  assert.equal(s.listResources().length, MAX_RESOURCES);
  const r = s.apply(index, {
    type: "put_resource",
    items: [{ kind: "Extra", name: "x", resource: { kind: "Extra" } }],
  });
  assert.equal(!r.ok && r.error.code, "resource_limit");
  assert.match(!r.ok ? r.error.message : "", /at most 16384 are kept/);
});

Deno.test("RegistryState forgets the oldest deleted resources past the bound, the same on every node", () => {
  const s = new RegistryState();
  const n = MAX_DELETED_RESOURCES_KEPT + 3;
  let index = putMany(s, 1, "Route", "r", 100);
  // Delete in an order unlike the map's: 99 first, then 0..98, then more.
  const order = [99, ...Array.from({ length: 99 }, (_, i) => i)];
  for (const i of order) {
    assert.ok(s.apply(index++, { type: "delete_resource", kind: "Route", name: `r-${i}` }).ok);
  }
  // A node restored from a snapshot here must end up with the same state as this one.
  const restored = RegistryState.restore(s.snapshot());
  for (let i = 0; i < n - 100; i += 100) {
    const m = Math.min(100, n - 100 - i);
    const from = index;
    index = putMany(s, index, "Route", `x${i}`, m);
    putMany(restored, from, "Route", `x${i}`, m);
    for (let j = 0; j < m; j++) {
      const c: RegistryCommand = { type: "delete_resource", kind: "Route", name: `x${i}-${j}` };
      assert.ok(s.apply(index, c).ok);
      assert.ok(restored.apply(index, c).ok);
      index++;
    }
  }
  // Three past the bound: the three deleted first (r-99, r-0, r-1) are forgotten.
  assert.equal(s.history("Route", "r-99"), undefined);
  assert.equal(s.history("Route", "r-0"), undefined);
  assert.equal(s.history("Route", "r-1"), undefined);
  assert.equal(s.history("Route", "r-2")?.at(-1)?.resource, null, "r-2 is kept, deleted");
  assert.deepEqual(restored.snapshot(), s.snapshot());
});
