/** A gateway's certificate renews as the gateway identity, against the real CA. */
import { assertEquals } from "../assert.ts";
import { signCsr } from "../../control/ca/mod.ts";
import { memoryLogger } from "../../common/log.ts";
import { parseSpiffeId } from "../../common/tls/mod.ts";
import { CertRenewer, parseCert, renewAt } from "../../mesh/identity/mod.ts";
import { FakeClock, testCa } from "./_pki.ts";

Deno.test("CertRenewer renews a gateway's certificate as spiffe://<td>/gateway/<name>", async () => {
  const t0 = Date.now();
  const clock = new FakeClock(t0);
  const ca = await testCa("skein.local", t0);
  let signed = 0;
  const r = new CertRenewer({
    // A gateway proxy keys its identity by its label, gateway/<name>.
    service: "gateway/edge",
    trustDomain: "skein.local",
    // The control API signs the identity the presented certificate holds (ca_routes renew()).
    sign: async (csrPem) => {
      signed++;
      const s = await signCsr(ca, {
        csrPem,
        identity: parseSpiffeId("spiffe://skein.local/gateway/edge")!,
        now: clock.now(),
        ttlMs: 24 * 3_600_000,
      });
      return { certPem: s.certPem, caPem: s.caPem };
    },
    clock,
    logger: memoryLogger(),
  });
  const first = await r.start();
  assertEquals(parseCert(first.certPem).spiffeId?.uri, "spiffe://skein.local/gateway/edge");
  const changed = new Promise<string>((resolve) => {
    const off = r.onChange((m) => {
      off();
      resolve(m.certPem);
    });
  });
  clock.advanceTo(renewAt(first.certPem, t0));
  const second = await changed;
  assertEquals(signed, 2);
  assertEquals(parseCert(second).spiffeId?.uri, "spiffe://skein.local/gateway/edge");
  r.stop();
});
