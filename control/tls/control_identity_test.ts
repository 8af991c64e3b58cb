import { createPrivateKey, X509Certificate } from "node:crypto";
import { assert, assertEquals, assertNotEquals } from "../../tests/assert.ts";
import { memoryLogger } from "../../common/log.ts";
import type { TlsMaterial } from "../../common/tls/mod.ts";
import { splitPemCerts as splitBundle } from "../../common/tls/mod.ts";
import { createCa, finishRotation, revokeIdentity, rotateCa } from "../ca/mod.ts";
import { ControlIdentity, type IdentityClock } from "./mod.ts";

/** Whole seconds: X.509 times have no milliseconds. */
const T0 = Math.floor(Date.now() / 1000) * 1000;
const HOUR = 3_600_000;
const TD = "skein.local";

/** Virtual time: timers fire only when the test advances the clock. */
class FakeClock implements IdentityClock {
  t: number;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  constructor(t: number) {
    this.t = t;
  }
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** The earliest pending timer's due time. */
  nextAt(): number | undefined {
    return Math.min(...[...this.timers.values()].map((x) => x.at));
  }
  /** Moves time to `t`, firing due timers in order. */
  advanceTo(t: number): void {
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) {
        if (e[1].at <= t && (!first || e[1].at < first[1].at)) first = e;
      }
      if (!first) break;
      this.timers.delete(first[0]);
      this.t = first[1].at;
      first[1].fn();
    }
    this.t = t;
  }
}

function sanOf(pem: string): string {
  return new X509Certificate(pem).subjectAltName ?? "";
}

Deno.test("ControlIdentity issues its own leaf: control SPIFFE id, IP and DNS SANs, bundle", async () => {
  const ca = await createCa({ trustDomain: TD, now: T0 });
  const id = await ControlIdentity.create({
    node: "cp-1",
    trustDomain: TD,
    ca,
    sans: { ip: ["10.0.0.1", "127.0.0.1"], dns: ["localhost"] },
    clock: new FakeClock(T0),
  });
  try {
    const m = id.material();
    const san = sanOf(m.certPem);
    assert(san.includes(`URI:spiffe://${TD}/control/cp-1`), san);
    assert(san.includes("IP Address:10.0.0.1"), san);
    assert(san.includes("IP Address:127.0.0.1"), san);
    assert(san.includes("DNS:localhost"), san);
    assertEquals(m.caPem, ca.roots[0]!.certPem);
    const leaf = new X509Certificate(m.certPem);
    assert(leaf.verify(new X509Certificate(ca.roots[0]!.certPem).publicKey));
    assert(leaf.checkPrivateKey(createPrivateKey(m.keyPem)));
    assertEquals(id.leaf().notAfter - T0, 24 * HOUR);
  } finally {
    id.close();
  }
});

Deno.test("ControlIdentity renews at two thirds of the leaf's life, on virtual time", async () => {
  const ca = await createCa({ trustDomain: TD, now: T0 });
  const clock = new FakeClock(T0);
  const changes: TlsMaterial[] = [];
  const id = await ControlIdentity.create({
    node: "cp-1",
    trustDomain: TD,
    ca,
    sans: { ip: [], dns: [] },
    clock,
    leafTtlMs: 3 * HOUR,
  });
  id.onChange((m) => changes.push(m));
  try {
    const first = id.leaf();
    const firstKey = id.material().keyPem;
    const due = clock.nextAt()!;
    // Two thirds of the lifetime granted when it was issued (T0): the backdated notBefore is a
    // skew allowance, not lifetime.
    const from = Math.max(first.notBefore, T0);
    assertEquals(due, from + Math.floor((first.notAfter - from) * 2 / 3));
    clock.advanceTo(due - 1);
    for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
    assertEquals(changes.length, 0, "nothing before the renewal time");
    clock.advanceTo(due);
    // The renewal runs on the issuing queue; wait for it through that queue.
    await new Promise((r) => setTimeout(r, 0));
    while (changes.length === 0) await new Promise((r) => setTimeout(r, 5));
    const second = id.leaf();
    assertNotEquals(second.serial, first.serial);
    assertEquals(second.notAfter, Math.floor((due + 3 * HOUR) / 1000) * 1000);
    assertEquals(changes.at(-1)!.certPem, id.material().certPem);
    assertNotEquals(changes.at(-1)!.keyPem, firstKey, "a new key per leaf");
  } finally {
    id.close();
  }
});

Deno.test("ControlIdentity follows rotation: new bundle first, new leaf on activation, old root dropped", async () => {
  const ca1 = await createCa({ trustDomain: TD, now: T0 });
  const clock = new FakeClock(T0);
  const id = await ControlIdentity.create({
    node: "cp-2",
    trustDomain: TD,
    ca: ca1,
    sans: { ip: ["127.0.0.1"], dns: [] },
    clock,
  });
  let changes = 0;
  id.onChange(() => changes++);
  try {
    const serial1 = id.leaf().serial;
    const trusted = await rotateCa(ca1, { now: T0, activate: false });
    await id.updateCa(trusted);
    assertEquals(id.leaf().serial, serial1, "a trusted-only root does not re-issue");
    assertEquals(splitBundle(id.material().caPem).length, 2);
    assertEquals(changes, 1);
    const newRoot = trusted.roots[1]!;
    const active = { ...trusted, activeRootId: newRoot.id, roots: [newRoot, trusted.roots[0]!] };
    await id.updateCa(active);
    assertNotEquals(id.leaf().serial, serial1);
    assertEquals(id.leaf().rootId, newRoot.id);
    assert(
      new X509Certificate(id.material().certPem).verify(
        new X509Certificate(newRoot.certPem).publicKey,
      ),
    );
    assertEquals(changes, 2);
    await id.updateCa(finishRotation(active));
    assertEquals(id.material().caPem, newRoot.certPem);
    assertEquals(changes, 3);
    // The same state again changes nothing.
    await id.updateCa(finishRotation(active));
    assertEquals(changes, 3);
  } finally {
    id.close();
  }
});

Deno.test("ControlIdentity refreshes the revocation list and keeps its leaf when it cannot re-issue", async () => {
  const ca = await createCa({ trustDomain: TD, now: T0 });
  const clock = new FakeClock(T0);
  const log = memoryLogger();
  const id = await ControlIdentity.create({
    node: "cp-3",
    trustDomain: TD,
    ca,
    sans: { ip: [], dns: [] },
    clock,
    logger: log,
  });
  try {
    const peer = `spiffe://${TD}/control/cp-9`;
    assertEquals(id.isRevoked(peer), false);
    const revoked = revokeIdentity(ca, peer, { now: T0 });
    await id.updateCa(revoked);
    assertEquals(id.isRevoked(peer), true);
    // Our own identity revoked: issuing fails, the current leaf stays and a retry is scheduled.
    const self = revokeIdentity(revoked, id.spiffeId, { now: T0 });
    const before = id.leaf().serial;
    await id.updateCa(self);
    await id.renewNow();
    assertEquals(id.leaf().serial, before);
    assert(log.lines.some((l) => l.includes("control certificate issue failed")));
    assert(clock.nextAt()! <= clock.now() + 60_000, "a retry is scheduled");
    assert(!log.lines.some((l) => l.includes("PRIVATE KEY")), "the key must never be logged");
    // A CA of another trust domain is ignored.
    const other = await createCa({ trustDomain: "other.example", now: T0 });
    await id.updateCa(other);
    assertEquals(id.material().caPem, ca.roots[0]!.certPem);
  } finally {
    id.close();
  }
});
