import assert from "node:assert/strict";
import {
  applyRotationStep,
  beginRotation,
  caDigest,
  createCa,
  parseCaState,
  planRotation,
  type RotationPolicy,
} from "./mod.ts";

const NOW = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;
const POLICY: RotationPolicy = {
  rotateBeforeExpiryMs: 30 * DAY,
  trustWaitMs: 600_000,
  onStuck: "proceed",
  leafTtlMs: DAY,
};
const NONE = { missingTrust: [], missingLeaves: [] };

Deno.test("planRotation() starts a rotation only when the active root nears expiry", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW, validityMs: 60 * DAY });
  assert.equal(planRotation(ca, NONE, POLICY, NOW).kind, "none");
  const step = planRotation(ca, NONE, POLICY, NOW + 31 * DAY);
  assert.equal(step.kind, "start");
  assert.match((step as { reason: string }).reason, /expires at/);
  const off = { ...POLICY, rotateBeforeExpiryMs: null };
  assert.equal(planRotation(ca, NONE, off, NOW + 59 * DAY).kind, "none", "no policy: never");
});

Deno.test("a driven rotation goes trust → activate → finish as members catch up", async () => {
  const ca0 = await createCa({ trustDomain: "skein.local", now: NOW });
  const ca1 = await beginRotation(ca0, { now: NOW, trigger: "operator" });
  assert.equal(ca1.rotation?.phase, "trust");
  assert.equal(ca1.activeRootId, ca0.activeRootId, "the new root does not sign yet");
  assert.equal(ca1.roots.length, 2);
  assert.deepEqual(parseCaState(JSON.parse(JSON.stringify(ca1))), ca1, "replicable");

  const waiting = { missingTrust: ["svc/a/1"], missingLeaves: [] };
  assert.equal(planRotation(ca1, waiting, POLICY, NOW + 1000).kind, "none");
  const go = planRotation(ca1, NONE, POLICY, NOW + 1000);
  assert.deepEqual(go, { kind: "activate", skipped: [] });
  const ca2 = applyRotationStep(ca1, go, NOW + 1000);
  assert.equal(ca2.activeRootId, ca1.rotation!.newRootId);
  assert.equal(ca2.rotation?.phase, "activate");
  assert.equal(ca2.rotation?.phaseSince, NOW + 1000);
  assert.deepEqual(parseCaState(JSON.parse(JSON.stringify(ca2))), ca2);

  const leaves = { missingTrust: [], missingLeaves: ["svc/a/1"] };
  assert.equal(planRotation(ca2, leaves, POLICY, NOW + 2000).kind, "none");
  const end = planRotation(ca2, NONE, POLICY, NOW + 2000);
  assert.equal(end.kind, "finish");
  const ca3 = applyRotationStep(ca2, end, NOW + 2000);
  assert.deepEqual(ca3.roots.map((r) => r.id), [ca2.activeRootId]);
  assert.equal(ca3.rotation, undefined);
  // One leaf lifetime after activation, stragglers no longer hold it up.
  assert.deepEqual(planRotation(ca2, leaves, POLICY, NOW + 1000 + DAY), {
    kind: "finish",
    skipped: ["svc/a/1"],
  });
});

Deno.test("stuck members: proceed after the bounded wait, or pause with an alert", async () => {
  const ca0 = await createCa({ trustDomain: "skein.local", now: NOW });
  const ca1 = await beginRotation(ca0, { now: NOW, trigger: "policy" });
  const stuck = { missingTrust: ["svc/b/9", "control/cp-3"], missingLeaves: [] };
  assert.equal(planRotation(ca1, stuck, POLICY, NOW + 599_999).kind, "none");
  assert.deepEqual(planRotation(ca1, stuck, POLICY, NOW + 600_000), {
    kind: "activate",
    skipped: ["svc/b/9", "control/cp-3"],
  });
  const pausing = { ...POLICY, onStuck: "pause" as const };
  const p = planRotation(ca1, stuck, pausing, NOW + 600_000);
  assert.equal(p.kind, "pause");
  assert.match((p as { reason: string }).reason, /svc\/b\/9, control\/cp-3/);
  const paused = applyRotationStep(ca1, p, NOW + 600_000);
  assert.equal(paused.activeRootId, ca0.activeRootId, "nothing activated");
  assert.equal(planRotation(paused, NONE, pausing, NOW + 700_000).kind, "none", "stays paused");
});

Deno.test("caDigest() changes with any part of the state", async () => {
  const ca0 = await createCa({ trustDomain: "skein.local", now: NOW });
  const ca1 = await beginRotation(ca0, { now: NOW, trigger: "operator" });
  assert.notEqual(caDigest(ca0), caDigest(ca1));
  assert.equal(caDigest(ca0), caDigest(parseCaState(JSON.parse(JSON.stringify(ca0)))));
  assert.notEqual(caDigest(null), caDigest(ca0));
});

Deno.test("parseCaState() refuses a rotation record that does not match the roots", async () => {
  const ca0 = await createCa({ trustDomain: "skein.local", now: NOW });
  const ca1 = await beginRotation(ca0, { now: NOW, trigger: "operator" });
  const json = JSON.parse(JSON.stringify(ca1));
  assert.throws(
    () => parseCaState({ ...json, rotation: { ...json.rotation, phase: "activate" } }),
    /expects root/,
  );
  assert.throws(
    () => parseCaState({ ...json, rotation: { ...json.rotation, newRootId: "abc" } }),
    /not trusted/,
  );
});
