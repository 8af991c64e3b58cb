import assert from "node:assert/strict";
import type { RegistryCommand } from "./commands.ts";
import {
  MAX_DELETED_RESOURCES_KEPT,
  MAX_RESOURCES,
  MAX_RESOURCES_PER_KIND,
  MAX_REVISIONS_KEPT,
  RegistryState,
} from "./state.ts";
import { policy } from "../../tests/control/registry_fixtures.ts";
import { StateIndexes } from "./apply_result.ts";
import { ResourceStore } from "./resource_store.ts";

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

Deno.test("ResourceStore keeps a deletion as a revision and counts it out of the current ones", () => {
  const at = new StateIndexes();
  const s = new ResourceStore(at);
  assert.ok(s.put(2, [policy("api", "1s")]).ok);
  assert.equal(at.catalog, 2);
  const del = s.delete(3, "Policy", "api");
  assert.deepEqual(del, { ok: true, index: 3, value: { type: "delete_resource", revision: 2 } });
  assert.equal(at.catalog, 3);
  assert.equal(s.getResource("Policy", "api"), undefined);
  assert.deepEqual(s.listResources(), []);
  assert.deepEqual(s.history("Policy", "api")?.map((r) => [r.revision, r.resource === null]), [
    [1, false],
    [2, true],
  ]);
  const again = s.delete(4, "Policy", "api");
  assert.ok(!again.ok && again.error.code === "not_found");
  const back = s.rollback(5, "Policy", "api", 1);
  assert.deepEqual(back, {
    ok: true,
    index: 5,
    value: { type: "rollback_resource", outcome: "updated", revision: 3 },
  });
  assert.equal(s.getResource("Policy", "api")?.revision, 3);
  assert.equal(at.catalog, 5);
});
