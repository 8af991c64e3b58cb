import assert from "node:assert/strict";
import { type Instance } from "./instance.ts";
import { canonicalJson, MAX_INSTANCES_PER_SERVICE, RegistryState, sameInstance } from "./state.ts";
import { inst, reg } from "../../tests/control/registry_fixtures.ts";
import { StateIndexes } from "./apply_result.ts";
import { ServiceTable } from "./service_table.ts";

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

Deno.test("ServiceTable moves the catalog index only when an instance really changes", () => {
  const at = new StateIndexes();
  const t = new ServiceTable(at);
  assert.ok(t.register(3, inst("api", "a1")).ok);
  assert.equal(at.catalog, 3);
  const again = t.register(4, inst("api", "a1"));
  assert.ok(again.ok && again.value.type === "register_instance" && !again.value.changed);
  assert.equal(at.catalog, 3);
  const gone = t.deregister(5, "api", "nope");
  assert.deepEqual(gone, {
    ok: false,
    index: 5,
    error: { code: "not_found", message: "no instance nope of service api" },
  });
  assert.equal(at.catalog, 3);
  const health = t.setHealth(6, [
    { service: "api", id: "a1", health: "critical" },
    { service: "api", id: "gone", health: "critical" },
  ]);
  assert.deepEqual(health, {
    ok: true,
    index: 6,
    value: { type: "set_health", changed: 1, unknown: 1 },
  });
  assert.equal(at.catalog, 6);
  assert.deepEqual(t.sorted().map((i) => `${i.service}/${i.id}/${i.health}`), [
    "api/a1/critical",
  ]);
});

Deno.test("ServiceTable refuses a proxy's registration over its quota, but not a change", () => {
  const at = new StateIndexes();
  const t = new ServiceTable(at);
  assert.ok(t.register(1, inst("api", "a1"), 1).ok);
  const over = t.register(2, inst("api", "a2"), 1);
  assert.ok(!over.ok && over.error.code === "quota_exceeded");
  assert.ok(t.register(3, inst("api", "a1", { port: 9 }), 1).ok);
  assert.equal(t.instance("api", "a1")?.port, 9);
});
