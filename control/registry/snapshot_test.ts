import assert from "node:assert/strict";
import type { RegistryCommand } from "./commands.ts";
import { RegistryState, SnapshotError } from "./state.ts";
import { captureSnapshot, parseSnapshot, SNAPSHOT_VERSION } from "./snapshot.ts";
import { encodeSnapshotParts } from "./snapshot_encode.ts";
import { inst, policy, reg } from "../../tests/control/registry_fixtures.ts";

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

Deno.test("parseSnapshot reads what captureSnapshot wrote, and names the first problem in layout order", () => {
  const parts = captureSnapshot({
    appliedIndex: 7,
    index: 5,
    instances: [inst("api", "a1")],
    resources: [{
      kind: "Policy",
      name: "api",
      revisions: [{ revision: 1, index: 4, resource: policy("api", "1s").resource }],
    }],
    credentials: {},
  });
  const back = parseSnapshot(encodeSnapshotParts(parts));
  assert.equal(back.appliedIndex, 7);
  assert.equal(back.index, 5);
  assert.deepEqual(back.instances, [inst("api", "a1")]);
  assert.equal(back.resources[0]?.revisions[0]?.index, 4);
  assert.equal(back.credentials.ca, undefined);
  // A duplicate instance and a broken CA: the instances come first in the layout.
  const bad = {
    version: SNAPSHOT_VERSION,
    applied_index: 2,
    index: 2,
    instances: [inst("api", "a1"), inst("api", "a1")],
    resources: [],
    ca: { broken: true },
  };
  assert.throws(
    () => parseSnapshot(new TextEncoder().encode(JSON.stringify(bad))),
    (e: unknown) => e instanceof SnapshotError && /duplicate instance api\/a1/.test(e.message),
  );
  assert.throws(
    () => parseSnapshot(new TextEncoder().encode(JSON.stringify({ ...bad, instances: [] }))),
    (e: unknown) => e instanceof SnapshotError && /: ca: /.test(e.message),
  );
});
