import * as x509 from "../../control/ca/_x509.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { EC_ALGORITHM, exportPrivateKeyPem, generateEcKeyPair } from "../../common/tls/mod.ts";
import {
  CERT_FILE,
  createKeyAndCsr,
  IDENTITY_FILE,
  IdentityStoreError,
  KEY_FILE,
  keyMatchesCert,
  loadIdentity,
  parseCert,
  renewAt,
  saveIdentity,
} from "./mod.ts";
import { ecdsaSignatureToDer } from "./csr.ts";

const T0 = Date.UTC(2026, 0, 1);

async function selfSigned(uris: string[], notBefore = T0, lifetimeMs = 24 * 3_600_000) {
  const keys = await generateEcKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "0a0b0c",
    name: "CN=t",
    notBefore: new Date(notBefore),
    notAfter: new Date(notBefore + lifetimeMs),
    signingAlgorithm: EC_ALGORITHM,
    keys,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        uris.map((value) => ({ type: "url" as const, value })),
      ),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

Deno.test("parseCert() reads validity, serial and the single SPIFFE id", async () => {
  const { certPem } = await selfSigned(["spiffe://skein.local/svc/payments"]);
  const c = parseCert(certPem);
  assertEquals(c.notBefore, T0);
  assertEquals(c.notAfter, T0 + 24 * 3_600_000);
  assertEquals(c.serial, "0a0b0c");
  assertEquals(c.spiffeId?.uri, "spiffe://skein.local/svc/payments");
  assertEquals(c.spiffeId?.kind, "service");
  const two = await selfSigned(["spiffe://a/svc/x", "spiffe://a/svc/y"]);
  assertEquals(parseCert(two.certPem).spiffeId, null, "several URI SANs: no identity");
  assertThrows(() => parseCert("not a cert"), TypeError);
});

Deno.test("renewAt() is issue time plus two thirds of the lifetime", async () => {
  const { certPem } = await selfSigned(["spiffe://a/svc/x"], T0, 30 * 3_600_000);
  assertEquals(renewAt(certPem), T0 + 20 * 3_600_000);
  assertEquals(renewAt(parseCert(certPem)), T0 + 20 * 3_600_000);
});

Deno.test("createKeyAndCsr() makes a verifiable P-256 CSR without the key in it", async () => {
  const { keyPem, csrPem } = await createKeyAndCsr({
    service: "payments",
    trustDomain: "skein.local",
  });
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  assert(await csr.verify());
  assertEquals((csr.publicKey.algorithm as EcKeyAlgorithm).namedCurve, "P-256");
  assertEquals(csr.subject, "CN=payments");
  assertEquals(csr.signatureAlgorithm.name, "ECDSA");
  const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension =>
    e instanceof x509.SubjectAlternativeNameExtension
  );
  assertEquals(san?.names.items.map((n) => [n.type, n.value]), [
    ["url", "spiffe://skein.local/svc/payments"],
  ]);
  // The key in the CSR is the one whose private half came back.
  const key = await crypto.subtle.importKey(
    "pkcs8",
    Uint8Array.from(
      atob(keyPem.replace(/-----[^-]+-----|\s/g, "")),
      (c) => c.charCodeAt(0),
    ),
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign"],
  );
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const pub = await crypto.subtle.exportKey("jwk", await csr.publicKey.export());
  assertEquals([pub.x, pub.y], [jwk.x, jwk.y]);
  assert(!csrPem.includes("PRIVATE"));
  assert(keyPem.includes("BEGIN PRIVATE KEY"));
  await assertRejects(
    () => createKeyAndCsr({ service: "bad/name", trustDomain: "skein.local" }),
    RangeError,
  );
});

Deno.test("ECDSA signatures become minimal DER integers, a leading zero where the top bit is set", () => {
  const raw = new Uint8Array(64);
  raw[0] = 0x80; // r has its top bit set: needs a 0x00 pad
  raw[33] = 0x05; // s starts with zero bytes: they are dropped
  const der = ecdsaSignatureToDer(raw);
  assertEquals(der[0], 0x30);
  assertEquals([der[2], der[3], der[4], der[5]], [0x02, 33, 0x00, 0x80]);
  const s = der.subarray(2 + 2 + 33);
  assertEquals([s[0], s[1], s[2]], [0x02, 31, 0x05]);
});

Deno.test("saveIdentity() writes 0600 files atomically and loadIdentity() reads them back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_store_" });
  try {
    const sub = `${dir}/proxy`;
    assertEquals(await loadIdentity(sub), null);
    const m = { ...(await selfSigned(["spiffe://a/svc/x"])), caPem: "ca\n" };
    await saveIdentity(sub, m);
    assertEquals(await loadIdentity(sub), m);
    for (const f of [IDENTITY_FILE, CERT_FILE, KEY_FILE]) {
      assertEquals((await Deno.stat(`${sub}/${f}`)).mode! & 0o777, 0o600, f);
    }
    assertEquals((await Deno.stat(sub)).mode! & 0o777, 0o700);
    // No temp files left behind.
    const names = [];
    for await (const e of Deno.readDir(sub)) names.push(e.name);
    assert(names.every((n) => !n.endsWith(".tmp")), names.join(","));
    // Overwrite with new material.
    const m2 = { ...(await selfSigned(["spiffe://a/svc/x"])), caPem: "ca2\n" };
    await saveIdentity(sub, m2);
    assertEquals(await loadIdentity(sub), m2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveIdentity()/loadIdentity() refuse a key that does not match the certificate", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_store_" });
  try {
    const a = await selfSigned(["spiffe://a/svc/x"]);
    const b = await selfSigned(["spiffe://a/svc/x"]);
    assert(keyMatchesCert(a.certPem, a.keyPem));
    assert(!keyMatchesCert(a.certPem, b.keyPem));
    await assertRejects(
      saveIdentity(dir, { certPem: a.certPem, keyPem: b.keyPem, caPem: "" }),
      IdentityStoreError,
    );
    await Deno.writeTextFile(
      `${dir}/${IDENTITY_FILE}`,
      JSON.stringify({ version: 1, certPem: a.certPem, keyPem: b.keyPem, caPem: "" }),
    );
    await assertRejects(loadIdentity(dir), IdentityStoreError);
    await Deno.writeTextFile(`${dir}/${IDENTITY_FILE}`, "{not json");
    await assertRejects(loadIdentity(dir), IdentityStoreError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keepsATrustedRoot(): rotations overlap, a wholesale replacement does not", async () => {
  const { keepsATrustedRoot } = await import("../../common/tls/mod.ts");
  const cur = new Set(["OLD"]);
  assertEquals(keepsATrustedRoot(cur, ["OLD", "NEW"]), true, "rotate: both trusted");
  assertEquals(keepsATrustedRoot(new Set(["OLD", "NEW"]), ["NEW"]), true, "finish");
  assertEquals(keepsATrustedRoot(cur, ["EVIL"]), false, "replacement refused");
  assertEquals(keepsATrustedRoot(cur, []), false);
  assertEquals(keepsATrustedRoot(new Set(), ["ANY"]), true, "nothing trusted yet");
});
