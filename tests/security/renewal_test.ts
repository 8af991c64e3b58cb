/**
 * CertRenewer on virtual time against the real CA, and a renewal under a live stream of
 * requests: the server and client swap material while requests keep succeeding.
 */
import type tls from "node:tls";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { type CaState, rotateCa, signCsr, trustBundlePem } from "../../control/ca/mod.ts";
import { memoryLogger } from "../../common/log.ts";
import { mtlsConnect, type TlsMaterial } from "../../common/tls/mod.ts";
import {
  CertRenewer,
  loadIdentity,
  parseCert,
  RenewalError,
  renewAt,
  saveIdentity,
} from "../../mesh/identity/mod.ts";
import { FakeClock, testCa, whoamiServer } from "./_pki.ts";

const HOUR = 3_600_000;

function signer(ca: CaState, clock: { now(): number }, service = "payments", ttlMs = 24 * HOUR) {
  let calls = 0;
  const sign = async (csrPem: string) => {
    calls++;
    const s = await signCsr(ca, {
      csrPem,
      identity: { kind: "service", service },
      now: clock.now(),
      ttlMs,
    });
    return { certPem: s.certPem, caPem: s.caPem };
  };
  return { sign, calls: () => calls };
}

/**
 * Waits (up to 10 s of real time) until a timer is pending on `clock`: a failed or refused
 * attempt schedules its retry only after key generation and signing, however long they take.
 */
async function untilScheduled(clock: FakeClock): Promise<void> {
  for (let i = 0; i < 2000 && clock.pending.length === 0; i++) {
    await new Promise((x) => setTimeout(x, 5));
  }
}

function nextChange(r: CertRenewer): Promise<TlsMaterial> {
  return new Promise((resolve) => {
    const off = r.onChange((m) => {
      off();
      resolve(m);
    });
  });
}

Deno.test("CertRenewer renews at two thirds of the lifetime, with a new key each time", async () => {
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  const ca = await testCa("skein.local", t0);
  const s = signer(ca, clock);
  const log = memoryLogger();
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: s.sign,
    clock,
    logger: log,
  });
  const first = await r.start();
  assertEquals(s.calls(), 1);
  const due = renewAt(first.certPem, t0);
  assertEquals(r.nextRenewalAt, due);
  const info = parseCert(first.certPem);
  // Two thirds of the lifetime granted at t0: the backdated notBefore is no part of it.
  assertEquals(due, t0 + Math.floor((info.notAfter - t0) * 2 / 3));
  clock.advanceTo(due - 1);
  assertEquals(s.calls(), 1, "not before the renewal time");
  const changed = nextChange(r);
  clock.advanceTo(due);
  const second = await changed;
  assertEquals(s.calls(), 2);
  assert(second.keyPem !== first.keyPem, "a fresh key per renewal");
  assert(parseCert(second.certPem).serial !== info.serial);
  assertEquals(r.current(), second);
  assert(!log.lines.join("\n").includes("PRIVATE KEY"), "no key material in logs");
  r.stop();
  assertEquals(clock.pending, []);
});

Deno.test("CertRenewer keeps valid material and retries with backoff when signing fails", async () => {
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  const ca = await testCa("skein.local", t0);
  const good = signer(ca, clock);
  let fail = false;
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: (csr) => fail ? Promise.reject(new Error("control unreachable")) : good.sign(csr),
    clock,
    retryBaseMs: 1000,
    retryMaxMs: 4000,
  });
  const first = await r.start();
  fail = true;
  clock.advanceTo(r.nextRenewalAt!);
  // Let the failed attempt settle; the retry is then scheduled on virtual time.
  await untilScheduled(clock);
  assertEquals(clock.pending[0]! - clock.now(), 1000);
  assertEquals(r.current(), first, "still serving the valid certificate");
  fail = false;
  const changed = nextChange(r);
  clock.advanceTo(clock.pending[0]!);
  const second = await changed;
  assert(second.certPem !== first.certPem);
  r.stop();
});

Deno.test("CertRenewer refuses a certificate for another identity or key", async () => {
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  const ca = await testCa("skein.local", t0);
  const wrongService = signer(ca, clock, "ledger");
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: wrongService.sign,
    clock,
  });
  await assertRejects(r.start(), RenewalError);
  const other = await signCsr(ca, {
    csrPem: (await import("../../mesh/identity/mod.ts").then((m) =>
      m.createKeyAndCsr({ service: "payments", trustDomain: "skein.local" })
    )).csrPem,
    identity: { kind: "service", service: "payments" },
    now: t0,
  });
  const r2 = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: () => Promise.resolve({ certPem: other.certPem, caPem: other.caPem }),
    clock,
  });
  await assertRejects(r2.start(), RenewalError);
  assertEquals(r2.current(), null);
});

Deno.test("CertRenewer starts from stored material without signing, and persists renewals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_id_" });
  try {
    const t0 = Date.now();
    const clock = new FakeClock(t0);
    const ca = await testCa("skein.local", t0);
    const s = signer(ca, clock);
    const opts = {
      service: "payments",
      trustDomain: "skein.local",
      sign: s.sign,
      clock,
      persist: (m: TlsMaterial) => saveIdentity(dir, m),
    };
    const a = new CertRenewer(opts);
    const first = await a.start();
    a.stop();
    assertEquals(await loadIdentity(dir), first);
    const b = new CertRenewer({ ...opts, initial: await loadIdentity(dir) });
    assertEquals(await b.start(), first);
    assertEquals(s.calls(), 1, "restart reuses the stored certificate");
    b.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renewal under load: material swaps while a stream of requests continues", async () => {
  // Real time here: TLS checks validity against the wall clock. Scheduling is tested above.
  const clock = { now: () => Date.now() };
  const ca = await testCa("skein.local");
  const serverRenewer = new CertRenewer({
    service: "ledger",
    trustDomain: "skein.local",
    sign: signer(ca, clock, "ledger").sign,
  });
  const clientRenewer = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: signer(ca, clock).sign,
  });
  const sm = await serverRenewer.start();
  await clientRenewer.start();
  const { srv, port } = await whoamiServer({ cert: sm.certPem, key: sm.keyPem, ca: sm.caPem });
  serverRenewer.onChange((m) => srv.updateMaterial(m));
  const serials = new Set<string>();

  // One long-lived keep-alive connection plus a new connection per batch.
  const open = async (): Promise<tls.TLSSocket> => {
    const m = clientRenewer.current()!;
    const s = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: m.certPem,
      key: m.keyPem,
      ca: m.caPem,
      expectSpiffe: "spiffe://skein.local/svc/ledger",
    });
    serials.add(s.getPeerCertificate().serialNumber);
    return s;
  };
  const request = (s: tls.TLSSocket) =>
    new Promise<string>((resolve, reject) => {
      s.once("error", reject);
      s.once("data", (d: Uint8Array) => {
        s.off("error", reject);
        resolve(new TextDecoder().decode(d));
      });
      s.write("GET / HTTP/1.1\r\n\r\n");
    });
  const longLived = await open();
  let ok = 0;
  let errors = 0;
  let stop = false;
  const stream = (async () => {
    while (!stop) {
      try {
        const fresh = await open();
        const [a, b] = await Promise.all([request(longLived), request(fresh)]);
        if (a.startsWith("HTTP/1.1 200") && b.startsWith("HTTP/1.1 200")) ok += 2;
        else errors++;
        fresh.destroy();
      } catch {
        errors++;
      }
    }
  })();
  try {
    for (let round = 0; round < 3; round++) {
      const before = ok;
      await Promise.all([serverRenewer.renewNow(), clientRenewer.renewNow()]);
      // Requests flowed across this swap (bounded: errors end the wait too).
      for (let i = 0; i < 4000 && ok < before + 10 && errors === 0; i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    stop = true;
    await stream;
    assertEquals(errors, 0);
    assert(ok >= 30, `ok=${ok}`);
    assert(serials.size >= 3, `new connections saw renewed server certificates: ${serials.size}`);
  } finally {
    stop = true;
    await stream;
    longLived.destroy();
    serverRenewer.stop();
    clientRenewer.stop();
    await srv.close({ destroyConnections: true });
  }
});

Deno.test("CertRenewer.updateTrustBundle() swaps only the bundle and notifies once", async () => {
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  const ca = await testCa("skein.local", t0);
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: signer(ca, clock).sign,
    clock,
  });
  const first = await r.start();
  const seen: TlsMaterial[] = [];
  r.onChange((m) => seen.push(m));
  await r.updateTrustBundle(first.caPem);
  assertEquals(seen.length, 0, "same bundle: no change");
  const rotated = await rotateCa(ca, { now: t0, activate: false });
  await r.updateTrustBundle(trustBundlePem(rotated));
  assertEquals(seen.length, 1);
  assertEquals(seen[0], { ...first, caPem: trustBundlePem(rotated) });
  r.stop();
});

Deno.test("CertRenewer does not renew in a loop when its clock is ahead of the CA's", async () => {
  const ca = await testCa();
  const caNow = Date.now();
  // Ahead by more than two thirds of a 1-minute lifetime: every fresh certificate is due.
  const clock = new FakeClock(caNow + 50_000);
  let signs = 0;
  const log = memoryLogger();
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    clock,
    logger: log,
    sign: async (csrPem) => {
      signs++;
      const s = await signCsr(ca, {
        csrPem,
        identity: { kind: "service", service: "payments" },
        now: caNow,
        ttlMs: 60_000,
      });
      return { certPem: s.certPem, caPem: trustBundlePem(ca) };
    },
  });
  try {
    await r.start();
    // Let any timer due at the frozen virtual time run, several times over.
    for (let i = 0; i < 20; i++) {
      clock.advanceTo(clock.t);
      await new Promise((res) => setTimeout(res, 5));
    }
    assertEquals(signs, 1, "one certificate, then a pause");
    assert(r.nextRenewalAt! - clock.t >= 30_000, `next in ${r.nextRenewalAt! - clock.t} ms`);
    assert(log.lines.some((l) => /clock ahead of the CA/.test(l)), log.lines.join("\n"));
  } finally {
    r.stop();
  }
});

Deno.test("CertRenewer does not warn about clocks after renewing a short leaf on one clock", async () => {
  // The CA backdates notBefore by its skew allowance; counting that margin as lifetime put a
  // 1-minute leaf's renewal 20 s after it arrived, under the 30 s floor, and warned with one clock.
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  const ca = await testCa("skein.local", t0 - HOUR);
  const s = signer(ca, clock, "payments", 60_000);
  const log = memoryLogger();
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: s.sign,
    clock,
    logger: log,
  });
  try {
    const first = await r.start();
    const info = parseCert(first.certPem);
    assert(info.notBefore < t0, "the CA backdates notBefore");
    // Certificates have whole seconds: the lifetime granted at t0 is 59–60 s.
    const due = r.nextRenewalAt!;
    assertEquals(due, renewAt(info, t0));
    assert(due >= t0 + 39_000, `renewal ${due - t0} ms after arrival`);
    assert(!log.lines.some((l) => /clock ahead of the CA/.test(l)), log.lines.join("\n"));
    const changed = nextChange(r);
    clock.advanceTo(due);
    await changed;
    // Listeners hear of the new material before the next renewal is scheduled.
    for (let i = 0; i < 2000 && r.nextRenewalAt === due; i++) {
      await new Promise((x) => setTimeout(x, 5));
    }
    assert(r.nextRenewalAt! >= due + 39_000, `next ${r.nextRenewalAt! - due} ms later`);
    assert(!log.lines.some((l) => /clock ahead of the CA/.test(l)), log.lines.join("\n"));
  } finally {
    r.stop();
  }
});

Deno.test("CertRenewer refuses at start, in one line naming the skew, when its clock is behind the CA's", async () => {
  const caNow = Date.now();
  const ca = await testCa("skein.local", caNow - HOUR);
  // Two minutes behind: the leaf, backdated one minute, is not valid yet by this clock.
  const clock = new FakeClock(caNow - 120_000);
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    clock,
    sign: (csr) => signer(ca, { now: () => caNow }).sign(csr),
  });
  const e = await assertRejects(() => r.start(), RenewalError);
  assertMatch(e.message, /clock is at least 6\d s behind the CA's/);
  assert(!e.message.includes("\n"), "one line");
  r.stop();
});

Deno.test("CertRenewer refuses a renewal whose trust bundle keeps none of the current roots", async () => {
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  const ca = await testCa("skein.local", t0);
  // Another CA for the same trust domain: its answer is well formed, for the right identity
  // and key, but it would replace every root this proxy trusts.
  const foreign = await testCa("skein.local", t0);
  let answerFrom = ca;
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: (csr) => signer(answerFrom, clock).sign(csr),
    clock,
    retryBaseMs: 1000,
    retryMaxMs: 4000,
  });
  const first = await r.start();
  answerFrom = foreign;
  clock.advanceTo(r.nextRenewalAt!);
  await untilScheduled(clock);
  assertEquals(clock.pending[0]! - clock.now(), 1000, "refused, so retried after the backoff");
  assertEquals(r.current(), first, "the current certificate and roots stay in use");

  // A rotation overlaps (old and new root together), so its answer is taken.
  const rotated = await rotateCa(ca, { now: t0, activate: true });
  answerFrom = rotated;
  const changed = nextChange(r);
  clock.advanceTo(clock.pending[0]!);
  const second = await changed;
  assertEquals(second.caPem, trustBundlePem(rotated));
  r.stop();
});

Deno.test("a trust-bundle update and a renewal saved at the same time both stay applied", async () => {
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  const ca = await testCa("skein.local", t0);
  const rotated = await rotateCa(ca, { now: t0, activate: true });
  let gate: PromiseWithResolvers<void> | null = null;
  // Resolved when a save takes the gate, so the test knows that save is under way (a fixed
  // sleep is not enough: key generation and signing can outlast it on a busy machine).
  let entered = Promise.withResolvers<void>();
  let signed = Promise.withResolvers<void>();
  const r = new CertRenewer({
    service: "payments",
    trustDomain: "skein.local",
    sign: async (csr) => {
      const answer = await signer(ca, clock).sign(csr);
      signed.resolve();
      return answer;
    },
    clock,
    // The save that finds the gate set waits on it (four fsynced files can take a while).
    persist: async () => {
      const g = gate;
      gate = null;
      if (g !== null) {
        entered.resolve();
        await g.promise;
      }
    },
  });
  const first = await r.start();

  // The bundle update is being saved while a renewal lands: the renewal must come after it,
  // not be overwritten by the pre-renewal certificate the update started from.
  let g = gate = Promise.withResolvers<void>();
  const update = r.updateTrustBundle(trustBundlePem(rotated));
  await entered.promise;
  signed = Promise.withResolvers<void>();
  const renewing = r.renewNow();
  await signed.promise;
  // The answer's checks are synchronous, so one macrotask later its install is queued.
  await new Promise((x) => setTimeout(x, 0));
  g.resolve();
  const renewed = await renewing;
  await update;
  assert(renewed.certPem !== first.certPem);
  assertEquals(r.current()!.certPem, renewed.certPem, "the renewed certificate stays in use");

  // The other way round: a renewal being saved while the bundle changes. The update applies
  // to the renewed material.
  g = gate = Promise.withResolvers<void>();
  entered = Promise.withResolvers<void>();
  const renewing2 = r.renewNow();
  await entered.promise;
  const update2 = r.updateTrustBundle(trustBundlePem(rotated) + "\n");
  g.resolve();
  const renewed2 = await renewing2;
  await update2;
  assertEquals(r.current()!.certPem, renewed2.certPem);
  assertEquals(r.current()!.caPem, trustBundlePem(rotated) + "\n");
  r.stop();
});
