import { X509Certificate } from "node:crypto";
import * as x509 from "./_x509.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/assert.ts";
import { memoryLogger } from "../../common/log.ts";
import { EC_ALGORITHM, exportPrivateKeyPem, generateEcKeyPair } from "../../common/tls/mod.ts";
import {
  activateRoot,
  CaError,
  type CaState,
  createCa,
  finishRotation,
  isRevoked,
  issueCertificate,
  LEAF_TTL_MS_DEFAULT,
  parseCaState,
  publicCaView,
  revocationChecker,
  revokeIdentity,
  rotateCa,
  serviceDnsName,
  signCsr,
  trustBundle,
  unrevokeIdentity,
} from "./mod.ts";

const NOW = Date.UTC(2026, 0, 1);
const PAYMENTS = { kind: "service", service: "payments" } as const;

async function csrFor(name: string, sans: string[] = []): Promise<string> {
  const keys = await generateEcKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: sans.length
      ? [
        new x509.SubjectAlternativeNameExtension(
          sans.map((v) => ({ type: "url" as const, value: v })),
        ),
      ]
      : [],
  });
  return csr.toString("pem");
}

function issuedBy(leafPem: string, rootPem: string): boolean {
  return new X509Certificate(leafPem).verify(new X509Certificate(rootPem).publicKey);
}

Deno.test("signCsr() issues a 24h leaf whose only URI SAN is the authenticated identity", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW });
  // The CSR asks for another identity: the CA must ignore it.
  const csrPem = await csrFor("ledger", ["spiffe://skein.local/svc/ledger"]);
  const leaf = await signCsr(ca, { csrPem, identity: PAYMENTS, now: NOW });
  const c = new X509Certificate(leaf.certPem);
  assertEquals(
    c.subjectAltName,
    "URI:spiffe://skein.local/svc/payments, DNS:payments.svc.skein.local",
  );
  assertEquals(leaf.spiffeId, "spiffe://skein.local/svc/payments");
  assertEquals(leaf.notAfter - NOW, LEAF_TTL_MS_DEFAULT);
  assert(leaf.notBefore < NOW, "backdated for clock skew");
  assert(issuedBy(leaf.certPem, ca.roots[0]!.certPem));
  assertEquals(c.ca, false);
  assertEquals(leaf.caPem, trustBundle(ca).join(""));
});

Deno.test("signCsr() names control nodes spiffe://<td>/control/<node>", async () => {
  const ca = await createCa({ trustDomain: "prod.example", now: NOW });
  const leaf = await signCsr(ca, {
    csrPem: await csrFor("x"),
    identity: { kind: "control", node: "cp-1" },
    now: NOW,
    extraSans: { dns: ["cp-1.internal"], ip: ["127.0.0.1"] },
  });
  const san = new X509Certificate(leaf.certPem).subjectAltName ?? "";
  assert(san.includes("URI:spiffe://prod.example/control/cp-1"), san);
  assert(san.includes("DNS:cp-1.internal"), san);
  assert(san.includes("IP Address:127.0.0.1"), san);
});

Deno.test("service leaves get the derived DNS SAN only for lowercase DNS-safe names", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW });
  const sanOf = async (service: string) => {
    const leaf = await signCsr(ca, {
      // The CSR asks for the DNS name of another service: ignored like its URI SAN.
      csrPem: await csrFor(service, ["spiffe://skein.local/svc/ledger"]),
      identity: { kind: "service", service },
      now: NOW,
    });
    return new X509Certificate(leaf.certPem).subjectAltName ?? "";
  };
  assertEquals(
    await sanOf("a.b-c"),
    "URI:spiffe://skein.local/svc/a.b-c, DNS:a.b-c.svc.skein.local",
  );
  // DNS compares case-insensitively and has no "_": such names keep the URI SAN alone, so
  // "Ledger" can never pass a name check meant for "ledger".
  assertEquals(await sanOf("Ledger"), "URI:spiffe://skein.local/svc/Ledger");
  assertEquals(await sanOf("led_ger"), "URI:spiffe://skein.local/svc/led_ger");
  assertEquals(serviceDnsName("skein.local", "x".repeat(64)), null, "label over 63 chars");
  assertEquals(serviceDnsName("skein.local", "a..b"), null);
  assertEquals(serviceDnsName("skein.local", "-a"), null);
  assertEquals(serviceDnsName("td", "pay"), "pay.svc.td");
});

Deno.test("signCsr() keeps svc.<td> names for services: control leaves cannot claim them", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW });
  const control = await signCsr(ca, {
    csrPem: await csrFor("x"),
    identity: { kind: "control", node: "cp-1" },
    now: NOW,
  });
  assertEquals(
    new X509Certificate(control.certPem).subjectAltName,
    "URI:spiffe://skein.local/control/cp-1",
  );
  for (const dns of ["ledger.svc.skein.local", "LEDGER.SVC.Skein.Local"]) {
    const e = await assertRejects(
      signCsr(ca, {
        csrPem: await csrFor("x"),
        identity: { kind: "control", node: "cp-1" },
        now: NOW,
        extraSans: { dns: [dns] },
      }),
      CaError,
    );
    assertEquals(e.code, "invalid_identity");
  }
});

Deno.test("signCsr() gives random serial numbers", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW });
  const csrPem = await csrFor("a");
  const a = await signCsr(ca, { csrPem, identity: PAYMENTS, now: NOW });
  const b = await signCsr(ca, { csrPem, identity: PAYMENTS, now: NOW });
  assert(a.serial !== b.serial);
  assertEquals(a.serial.length, 32);
});

Deno.test("signCsr() refuses a CSR whose signature does not verify", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW });
  const good = new x509.Pkcs10CertificateRequest(await csrFor("a"));
  const raw = new Uint8Array(good.rawData);
  raw[raw.length - 5] = raw[raw.length - 5]! ^ 0x55; // flip bits inside the signature
  const bad = new x509.Pkcs10CertificateRequest(raw).toString("pem");
  const e = await assertRejects(
    signCsr(ca, { csrPem: bad, identity: PAYMENTS, now: NOW }),
    CaError,
  );
  assert(e.code === "bad_csr_signature" || e.code === "invalid_csr", e.code);
});

Deno.test("signCsr() refuses garbage, RSA keys, bad TTLs, bad names and revoked identities", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW });
  const csrPem = await csrFor("a");
  const code = async (p: Promise<unknown>) => (await assertRejects(p, CaError)).code;
  assertEquals(
    await code(signCsr(ca, { csrPem: "nope", identity: PAYMENTS, now: NOW })),
    "invalid_csr",
  );
  const rsa = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=r",
    keys: rsa,
    signingAlgorithm: { name: "RSASSA-PKCS1-v1_5" },
  });
  assertEquals(
    await code(signCsr(ca, { csrPem: rsaCsr.toString("pem"), identity: PAYMENTS, now: NOW })),
    "unsupported_key",
  );
  assertEquals(
    await code(signCsr(ca, { csrPem, identity: PAYMENTS, now: NOW, ttlMs: 10 })),
    "invalid_ttl",
  );
  assertEquals(
    await code(signCsr(ca, { csrPem, identity: { kind: "service", service: "a/b" }, now: NOW })),
    "invalid_identity",
  );
  const revoked = revokeIdentity(ca, "spiffe://skein.local/svc/payments", { now: NOW });
  assertEquals(await code(signCsr(revoked, { csrPem, identity: PAYMENTS, now: NOW })), "revoked");
});

Deno.test("rotation: both roots trusted during the overlap, new leaves from the new root", async () => {
  const ca1 = await createCa({ trustDomain: "skein.local", now: NOW });
  const oldLeaf = await issueCertificate(ca1, { identity: PAYMENTS, now: NOW });
  const ca2 = await rotateCa(ca1, { now: NOW + 1000 });
  assertEquals(trustBundle(ca2).length, 2);
  const newLeaf = await issueCertificate(ca2, { identity: PAYMENTS, now: NOW + 1000 });
  const [newRoot, oldRoot] = trustBundle(ca2) as [string, string];
  assert(issuedBy(newLeaf.certPem, newRoot));
  assert(!issuedBy(newLeaf.certPem, oldRoot));
  assert(issuedBy(oldLeaf.certPem, oldRoot));
  await assertRejects(rotateCa(ca2, { now: NOW }), CaError);
  const ca3 = finishRotation(ca2);
  assertEquals(trustBundle(ca3), [newRoot]);
  assertEquals(finishRotation(ca3), ca3);
});

Deno.test("rotateCa({activate:false}) trusts the new root before it signs", async () => {
  const ca1 = await createCa({ trustDomain: "skein.local", now: NOW });
  const ca2 = await rotateCa(ca1, { now: NOW, activate: false });
  assertEquals(ca2.activeRootId, ca1.activeRootId);
  const staged = ca2.roots[1]!;
  const leaf = await issueCertificate(ca2, { identity: PAYMENTS, now: NOW });
  assert(issuedBy(leaf.certPem, ca1.roots[0]!.certPem));
  const ca3 = activateRoot(ca2, staged.id);
  const leaf3 = await issueCertificate(ca3, { identity: PAYMENTS, now: NOW });
  assert(issuedBy(leaf3.certPem, staged.certPem));
  assertThrows(() => activateRoot(ca3, "00"), CaError);
});

Deno.test("revocation: revoke, check, unrevoke, and refuse ids of other domains", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW });
  const ids = [
    "spiffe://skein.local/svc/b",
    "spiffe://skein.local/svc/a",
    "spiffe://skein.local/control/cp-1",
  ];
  let s: CaState = ca;
  for (const id of ids) s = revokeIdentity(s, id, { now: NOW, reason: "stolen" });
  for (const id of ids) assert(isRevoked(s, id), id);
  assert(!isRevoked(s, "spiffe://skein.local/svc/c"));
  assert(revocationChecker(s)("spiffe://skein.local/svc/a"));
  assertEquals(revokeIdentity(s, ids[0]!, { now: NOW + 5 }), s, "idempotent");
  s = unrevokeIdentity(s, ids[1]!);
  assert(!isRevoked(s, ids[1]!));
  assert(isRevoked(s.revoked, ids[0]!));
  assertThrows(() => revokeIdentity(s, "spiffe://other/svc/a", { now: NOW }), CaError);
});

Deno.test("CaState survives JSON and parseCaState; publicCaView has no private keys", async () => {
  let ca: CaState = await createCa({ trustDomain: "skein.local", now: NOW });
  ca = revokeIdentity(ca, "spiffe://skein.local/svc/x", { now: NOW });
  const back = parseCaState(JSON.parse(JSON.stringify(ca)));
  assertEquals(back, ca);
  const leaf = await issueCertificate(back, { identity: PAYMENTS, now: NOW });
  assert(issuedBy(leaf.certPem, ca.roots[0]!.certPem));
  assert(!JSON.stringify(publicCaView(ca)).includes("PRIVATE KEY"));
  assertThrows(() => parseCaState({ ...ca, activeRootId: "ff" }), CaError);
  assertThrows(() => parseCaState({ version: 2 }), CaError);
});

Deno.test("a CaState passed to the logger by mistake has its private keys redacted", async () => {
  const ca = await createCa({ trustDomain: "skein.local", now: NOW });
  const log = memoryLogger();
  log.info("ca state", { state: JSON.stringify(ca), dump: ca.roots[0]!.keyPem });
  const out = log.lines.join("\n");
  assert(!out.includes(ca.roots[0]!.keyPem.split("\n")[1]!), "key body must not be logged");
  assert(out.includes("BEGIN CERTIFICATE") || out.includes("[redacted]"));
});

Deno.test("a CaState key round-trips through PKCS#8 PEM", async () => {
  const keys = await generateEcKeyPair();
  const pem = await exportPrivateKeyPem(keys.privateKey);
  assert(pem.startsWith("-----BEGIN PRIVATE KEY-----\n"));
});
