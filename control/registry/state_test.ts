import assert from "node:assert/strict";
import { decodeCommand, type RegistryCommand } from "./commands.ts";
import { RegistryState } from "./state.ts";
import { seededRandom } from "../../tests/seeded_random.ts";
import { inst, policy, reg } from "../../tests/control/registry_fixtures.ts";

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
