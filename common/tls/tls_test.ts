import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import {
  exportPrivateKeyPem,
  fromPem,
  generateEcKeyPair,
  identityName,
  importPrivateKeyPem,
  parseSpiffeId,
  serverTlsOptions,
  spiffeIdFor,
  spiffeIdFromSans,
  splitPemCerts,
  toPem,
  uriSans,
} from "./mod.ts";

Deno.test("spiffeIdFor() builds service and control ids and refuses bad names", () => {
  assertEquals(
    spiffeIdFor("skein.local", { kind: "service", service: "payments" }),
    "spiffe://skein.local/svc/payments",
  );
  assertEquals(
    spiffeIdFor("skein.local", { kind: "control", node: "cp-1" }),
    "spiffe://skein.local/control/cp-1",
  );
  assertThrows(() => spiffeIdFor("Bad_Domain", { kind: "service", service: "a" }), RangeError);
  assertThrows(() => spiffeIdFor("a", { kind: "service", service: "a/../b" }), RangeError);
  assertThrows(() => spiffeIdFor("a", { kind: "service", service: "" }), RangeError);
});

Deno.test("parseSpiffeId(): table", () => {
  const rows: [string, string | null][] = [
    ["spiffe://skein.local/svc/payments", "service:payments@skein.local"],
    ["spiffe://skein.local/control/cp-1", "control:cp-1@skein.local"],
    ["spiffe://skein.local/svc/payments/extra", null],
    ["spiffe://skein.local/other/x", null],
    ["spiffe://skein.local/svc/", null],
    ["spiffe://SKEIN/svc/a", null],
    ["http://skein.local/svc/a", null],
    ["spiffe://skein.local/svc/" + "a".repeat(200), null],
    ["", null],
  ];
  for (const [uri, want] of rows) {
    const p = parseSpiffeId(uri);
    const got = p ? `${p.kind}:${identityName(p)}@${p.trustDomain}` : null;
    assertEquals(got, want, uri);
  }
});

Deno.test("spiffeIdFromSans() needs exactly one URI SAN", () => {
  assertEquals(uriSans("DNS:a, URI:spiffe://t/svc/a, IP Address:1.2.3.4"), ["spiffe://t/svc/a"]);
  assertEquals(spiffeIdFromSans("DNS:a, URI:spiffe://t/svc/a")?.uri, "spiffe://t/svc/a");
  assertEquals(spiffeIdFromSans("URI:spiffe://t/svc/a, URI:spiffe://t/svc/b"), null);
  assertEquals(spiffeIdFromSans("DNS:a"), null);
  assertEquals(spiffeIdFromSans(undefined), null);
});

Deno.test("PEM helpers round-trip keys and split bundles", async () => {
  const k = await generateEcKeyPair();
  const pem = await exportPrivateKeyPem(k.privateKey);
  const key = await importPrivateKeyPem(pem);
  assertEquals(key.type, "private");
  const der = fromPem(pem, "PRIVATE KEY");
  assertEquals(toPem(der, "PRIVATE KEY"), pem);
  assertThrows(() => fromPem("nothing", "CERTIFICATE"), TypeError);
  const a = toPem(new Uint8Array([1, 2, 3]), "CERTIFICATE");
  const b = toPem(new Uint8Array([4, 5]), "CERTIFICATE");
  assertEquals(splitPemCerts(a + b), [a, b]);
});

Deno.test("serverTlsOptions() requires client certificates and TLS 1.3 by default", () => {
  const o = serverTlsOptions({ certPem: "c", keyPem: "k", caPem: "a" });
  assertEquals([o.requestCert, o.rejectUnauthorized, o.minVersion], [true, true, "TLSv1.3"]);
  const api = serverTlsOptions({ certPem: "c", keyPem: "k", caPem: "a" }, {
    requireClientCert: false,
  });
  assert(api.requestCert && api.rejectUnauthorized === false);
});
