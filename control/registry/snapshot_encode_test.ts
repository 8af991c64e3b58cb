import assert from "node:assert/strict";
import { RegistryState } from "./state.ts";
import { encodeSnapshotYielding } from "./snapshot_encode.ts";
import { InstanceSchema } from "./instance.ts";
import type { RegistryCommand } from "./commands.ts";

function registerCommand(
  service: string,
  id: string,
  extra: Record<string, unknown>,
): RegistryCommand {
  return { type: "register_instance", instance: InstanceSchema.parse({ service, id, ...extra }) };
}

function bigState(n: number): RegistryState {
  const st = new RegistryState();
  for (let i = 0; i < n; i++) {
    const r = st.apply(
      i + 1,
      registerCommand(`svc-${i % 37}`, `i-${i}`, {
        address: `10.0.${(i >> 8) & 255}.${i & 255}`,
        port: 8080,
        meta: { b: "2", a: "1" },
      }),
    );
    assert.ok(r.ok);
  }
  return st;
}

Deno.test("the yielding snapshot encoding gives the same bytes as snapshot() and restores", async () => {
  for (const n of [0, 1, 7, 250]) {
    const st = bigState(n);
    const bytes = await encodeSnapshotYielding(st.snapshotParts(), 16);
    assert.deepEqual(bytes, st.snapshot());
    assert.deepEqual(RegistryState.restore(bytes).snapshot(), st.snapshot());
  }
});

Deno.test("the yielding snapshot encoding lets other work run, and keeps the captured state", async () => {
  const st = bigState(100);
  const parts = st.snapshotParts();
  const expected = st.snapshot();
  const order: string[] = [];
  const encoding = encodeSnapshotYielding(parts, 10).then((b) => (order.push("encoded"), b));
  // A timer queued after the encoding started runs before it ends: the loop is not held.
  const tick = new Promise<void>((r) => setTimeout(() => (order.push("timer"), r()), 0));
  // A change applied while encoding does not leak into the snapshot of the captured index.
  const more = st.apply(
    1000,
    registerCommand("svc-0", "i-0", { address: "10.9.9.9", port: 9999 }),
  );
  assert.ok(more.ok);
  const bytes = await encoding;
  await tick;
  assert.deepEqual(order, ["timer", "encoded"]);
  assert.deepEqual(bytes, expected);
  assert.notDeepEqual(st.snapshot(), expected);
});
