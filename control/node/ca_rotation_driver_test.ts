import assert from "node:assert/strict";
import { nullLogger } from "../../common/log.ts";
import {
  type CaState,
  certFingerprint,
  createCa,
  type RotationPolicy,
  type TrustReport,
} from "../ca/mod.ts";
import {
  type ApplyResult,
  InstanceSchema,
  RegistryState,
  type ValidatedCommand,
} from "../registry/mod.ts";
import { RotationDriver } from "./ca_rotation_driver.ts";

const DAY = 86_400_000;

/** A leader over a real registry state whose proposals apply at once, on virtual time. */
async function setup(policy: Partial<RotationPolicy> = {}, validityMs = 3650 * DAY) {
  let now = Date.UTC(2026, 0, 1);
  let index = 0;
  const state = new RegistryState();
  const ca = await createCa({ trustDomain: "skein.local", now, validityMs });
  state.apply(++index, {
    type: "put_ca",
    ca: ca as unknown as Record<string, unknown>,
    expect_root_id: null,
  });
  for (const id of ["l1", "l2"]) {
    state.apply(++index, {
      type: "register_instance",
      instance: InstanceSchema.parse({ service: "ledger", id, address: "10.0.0.1", port: 80 }),
    });
  }
  const progress: Record<string, { match: number }> = { "cp-2": { match: 0 } };
  const proposed: ValidatedCommand[] = [];
  const d = new RotationDriver({
    self: "cp-1",
    state: () => state,
    raft: () => ({
      role: "leader",
      applied: index,
      conf: { voters: ["cp-1", "cp-2"], learners: [] },
      progress,
    }),
    propose: (cmd): Promise<ApplyResult> => {
      proposed.push(cmd);
      return Promise.resolve(state.apply(++index, cmd));
    },
    policy: {
      rotateBeforeExpiryMs: null,
      trustWaitMs: 60_000,
      onStuck: "proceed",
      leafTtlMs: DAY,
      ...policy,
    },
    log: nullLogger,
    now: () => now,
  });
  /** Ticks a second later and waits until the step it took, if any, has been applied. */
  const tick = async () => {
    now += 1_000;
    await d.tick();
  };
  const ca0 = (): CaState => state.ca()!;
  const report = (id: string, r: Partial<TrustReport>) =>
    d.reports.record(`svc/ledger/${id}`, { roots: [], leafRoot: null, ...r });
  return {
    d,
    state,
    tick,
    ca: ca0,
    report,
    progress,
    proposed,
    index: () => index,
    apply: (cmd: Parameters<RegistryState["apply"]>[1]) => state.apply(++index, cmd),
    advance: (ms: number) => (now += ms),
  };
}

Deno.test("the leader starts a rotation by policy and carries it through as members report", async () => {
  const t = await setup({ rotateBeforeExpiryMs: 30 * DAY }, 20 * DAY);
  const first = t.ca().activeRootId;
  await t.tick();
  const rot = t.ca().rotation;
  assert.equal(rot?.phase, "trust", "started: the root expires within the policy's lead");
  assert.equal(rot?.trigger, "policy");
  const put = t.proposed[0] as { expect_digest?: string };
  assert.match(put.expect_digest ?? "", /^[0-9a-f]{64}$/, "a compare-and-set on the whole state");

  const fps = t.ca().roots.map((r) => certFingerprint(r.certPem));
  const newFp = certFingerprint(t.ca().roots.find((r) => r.id === rot!.newRootId)!.certPem);
  assert.deepEqual(t.d.status()?.missing, ["control/cp-2", "svc/ledger/l1", "svc/ledger/l2"]);
  t.report("l1", { roots: fps });
  t.report("l2", { roots: [fps[0]!] }); // not the new bundle yet
  t.progress["cp-2"] = { match: t.index() };
  await t.tick();
  assert.equal(t.ca().rotation?.phase, "trust", "l2 still lacks the new root");
  assert.deepEqual(t.d.status()?.missing, ["svc/ledger/l2"]);
  t.report("l2", { roots: fps });
  await t.tick();
  assert.equal(t.ca().rotation?.phase, "activate");
  assert.equal(t.ca().activeRootId, rot!.newRootId);

  // Control nodes must reach the activation too; proxies must hold leaves from the new root.
  t.report("l1", { roots: fps, leafRoot: newFp });
  t.report("l2", { roots: fps, leafRoot: newFp });
  await t.tick();
  assert.equal(t.ca().rotation?.phase, "activate", "cp-2 has not reached the activation");
  t.progress["cp-2"] = { match: t.index() };
  await t.tick();
  assert.equal(t.ca().rotation, undefined, "finished");
  assert.deepEqual(t.ca().roots.map((r) => r.id), [rot!.newRootId]);
  assert.notEqual(t.ca().activeRootId, first);
  const count = t.proposed.length;
  await t.tick();
  assert.equal(t.proposed.length, count, "the new root is far from expiry: nothing more");
});

Deno.test("a stuck member pauses the rotation by policy, with the stragglers named", async () => {
  const t = await setup({ onStuck: "pause", trustWaitMs: 10_000 });
  assert.equal(t.d.status()?.rotation, null);
  // An operator's rotation: the API would commit this; here the driver's own state is used.
  const { beginRotation, caDigest } = await import("../ca/mod.ts");
  const next = await beginRotation(t.ca(), { now: Date.UTC(2026, 0, 1), trigger: "operator" });
  const r = t.apply({
    type: "put_ca",
    ca: next as unknown as Record<string, unknown>,
    expect_root_id: t.ca().activeRootId,
    expect_digest: caDigest(t.ca()),
  });
  assert.ok(r.ok);
  t.progress["cp-2"] = { match: Number.MAX_SAFE_INTEGER };
  await t.tick();
  assert.equal(t.ca().rotation?.paused, null, "still within trust_wait");
  t.advance(10_000);
  await t.tick();
  const paused = t.ca().rotation?.paused ?? "";
  assert.match(paused, /svc\/ledger\/l1, svc\/ledger\/l2/);
  assert.match(paused, /skein ctl ca activate/);
  assert.equal(t.ca().activeRootId, next.rotation!.oldRootId, "nothing activated");
});

Deno.test("onIntermediate() names proxies still on (or silent about) an intermediate and control nodes behind", async () => {
  const t = await setup();
  const OLD = "AA:".repeat(31) + "AA";
  const NEW = "BB:".repeat(31) + "BB";
  assert.deepEqual(t.d.onIntermediate(OLD), ["control/cp-2", "svc/ledger/l1", "svc/ledger/l2"]);
  t.report("l1", { leafIssuer: NEW });
  t.report("l2", { leafIssuer: OLD });
  t.progress["cp-2"] = { match: t.index() };
  assert.deepEqual(t.d.onIntermediate(OLD), ["svc/ledger/l2"]);
  t.report("l2", { leafIssuer: NEW });
  assert.deepEqual(t.d.onIntermediate(OLD), []);
  // Later writes do not hold it back: cp-2 only needs the entries up to the rotation.
  t.apply({ type: "set_health", changes: [{ service: "ledger", id: "l1", health: "warning" }] });
  assert.deepEqual(t.d.onIntermediate(OLD), []);
  // A critical instance is most likely gone: it is not waited for.
  t.report("l2", {});
  t.apply({ type: "set_health", changes: [{ service: "ledger", id: "l2", health: "critical" }] });
  assert.deepEqual(t.d.onIntermediate(OLD), []);
});
