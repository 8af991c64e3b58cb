/**
 * What a proxy reports of its trust for a CA rotation, and its renewal as soon as the CA's
 * active root changes.
 */
import { assertEquals } from "../assert.ts";
import {
  activateRoot,
  beginRotation,
  certFingerprint,
  trustBundlePem,
} from "../../control/ca/mod.ts";
import { ActivationRenewal, type CertRenewer, trustReport } from "../../mesh/identity/mod.ts";
import { leaf, testCa } from "./_pki.ts";

Deno.test("trustReport() names the roots held and the one that signed the certificate", async () => {
  const ca0 = await testCa();
  const ca1 = await beginRotation(ca0, { now: Date.now(), trigger: "operator" });
  const old = ca0.roots[0]!;
  const added = ca1.roots.find((r) => r.id !== old.id)!;
  const l = await leaf(ca1, "ledger");
  const r = trustReport({ certPem: l.certPem, keyPem: l.keyPem, caPem: trustBundlePem(ca1) });
  assertEquals(r.roots, [certFingerprint(old.certPem), certFingerprint(added.certPem)]);
  assertEquals(r.leaf_root, certFingerprint(old.certPem), "the old root still signs");
  assertEquals(r.leaf_issuer, null, "a root signed it directly, no intermediate");
  const ca2 = activateRoot(ca1, added.id, Date.now());
  const l2 = await leaf(ca2, "ledger");
  const r2 = trustReport({ certPem: l2.certPem, keyPem: l2.keyPem, caPem: trustBundlePem(ca2) });
  assertEquals(r2.leaf_root, certFingerprint(added.certPem));
  const foreign = await testCa();
  const r3 = trustReport({
    certPem: l2.certPem,
    keyPem: l2.keyPem,
    caPem: trustBundlePem(foreign),
  });
  assertEquals(r3.leaf_root, null, "a root that did not sign it is not claimed");
});

Deno.test("ActivationRenewal renews once per new active root, only certificates from another", async () => {
  const ca0 = await testCa();
  const ca1 = await beginRotation(ca0, { now: Date.now(), trigger: "operator" });
  const added = ca1.roots.find((r) => r.id !== ca0.activeRootId)!;
  const l = await leaf(ca1, "ledger");
  let renewals = 0;
  let done!: () => void;
  const renewed = new Promise<void>((r) => (done = r));
  const fake = {
    current: () => ({ certPem: l.certPem, keyPem: l.keyPem, caPem: trustBundlePem(ca1) }),
    renewNow: () => {
      renewals++;
      done();
      return Promise.resolve();
    },
  } as unknown as CertRenewer;
  const a = new ActivationRenewal({ renewers: () => [fake], jitterMs: 0 });
  try {
    a.onRoots(ca1.roots.map((r) => r.certPem)); // trust phase: the old root is still active
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(renewals, 0, "its certificate comes from the active root");
    const ca2 = activateRoot(ca1, added.id, Date.now());
    a.onRoots(ca2.roots.map((r) => r.certPem));
    // The renewal timer does not hold the process open by itself (unref'd): this one does.
    const hold = setTimeout(() => {}, 10_000);
    await renewed;
    clearTimeout(hold);
    a.onRoots(ca2.roots.map((r) => r.certPem)); // the same catalog again
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(renewals, 1, "once per activation");
  } finally {
    a.stop();
  }
});
