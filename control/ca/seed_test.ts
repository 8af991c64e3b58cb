import { X509Certificate } from "node:crypto";
import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/assert.ts";
import { memoryLogger } from "../../common/log.ts";
import {
  CaError,
  caStateFromPem,
  createCa,
  createOfflineRootCa,
  issueCertificate,
  loadOrCreateSeedCa,
  SeedCaError,
  writeOfflineSeed,
  writeSeedCa,
} from "./mod.ts";

const NOW = Date.now();
const TD = "skein.local";

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "skein_seed_" });
}

Deno.test("caStateFromPem() rebuilds a CA that signs leaves its own root verifies", async () => {
  const ca = await createCa({ trustDomain: TD, now: NOW });
  const root = ca.roots[0]!;
  const st = await caStateFromPem({
    certPem: root.certPem,
    keyPem: root.keyPem,
    trustDomain: TD,
    now: NOW,
  });
  assertEquals(st.activeRootId, root.id);
  assertEquals(st.roots[0]!.generation, 1);
  assertEquals(st.name, "skein");
  const leaf = await issueCertificate(st, {
    identity: { kind: "control", node: "cp-1" },
    now: NOW,
  });
  assert(new X509Certificate(leaf.certPem).verify(new X509Certificate(root.certPem).publicKey));
});

Deno.test("caStateFromPem() refuses a leaf, a foreign key, another trust domain, an expired root", async () => {
  const ca = await createCa({ trustDomain: TD, now: NOW });
  const other = await createCa({ trustDomain: TD, now: NOW });
  const fed = await createCa({ trustDomain: "partner.example", now: NOW });
  const old = await createCa({ trustDomain: TD, now: NOW - 10_000_000, validityMs: 3_600_000 });
  const leaf = await issueCertificate(ca, {
    identity: { kind: "control", node: "cp-1" },
    now: NOW,
  });
  const root = ca.roots[0]!;
  const cases: [string, { certPem: string; keyPem: string }, RegExp][] = [
    ["leaf", { certPem: leaf.certPem, keyPem: leaf.keyPem }, /not a CA certificate/],
    ["foreign key", { certPem: root.certPem, keyPem: other.roots[0]!.keyPem }, /does not match/],
    ["other domain", fed.roots[0]!, /expected spiffe:\/\/skein\.local/],
    ["expired", old.roots[0]!, /expired/],
    ["garbage", {
      certPem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      keyPem: root.keyPem,
    }, /does not parse/],
    [
      "two certs",
      { certPem: root.certPem + other.roots[0]!.certPem, keyPem: root.keyPem },
      /one certificate/,
    ],
  ];
  for (const [name, pair, re] of cases) {
    const e = await assertRejects(
      caStateFromPem({ ...pair, trustDomain: TD, now: NOW }),
      CaError,
      name,
    );
    assertMatch(e.message, re, name);
  }
});

Deno.test("caStateFromPem() accepts a root made by openssl", async () => {
  const dir = await tmp();
  try {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${dir}/k`,
        "-out",
        `${dir}/c`,
        "-days",
        "30",
        "-subj",
        "/CN=acme root 3",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        `subjectAltName=URI:spiffe://${TD}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    const st = await caStateFromPem({
      certPem: await Deno.readTextFile(`${dir}/c`),
      keyPem: await Deno.readTextFile(`${dir}/k`),
      trustDomain: TD,
      now: Date.now(),
    });
    assertEquals(st.name, "acme");
    assertEquals(st.roots[0]!.generation, 3);
    await issueCertificate(st, { identity: { kind: "service", service: "a" }, now: Date.now() });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadOrCreateSeedCa() creates both files once (key 0600), then loads the same root", async () => {
  const dir = await tmp();
  const log = memoryLogger();
  const opts = {
    certFile: `${dir}/sub/ca.pem`,
    keyFile: `${dir}/sub/ca.key`,
    trustDomain: TD,
    now: NOW,
    logger: log,
  };
  try {
    await assertRejects(loadOrCreateSeedCa({ ...opts, create: false }), SeedCaError);
    const made = await loadOrCreateSeedCa({ ...opts, create: true });
    assertEquals((await Deno.stat(opts.keyFile)).mode! & 0o777, 0o600);
    assert(log.lines.some((l) => l.includes("CA seed created")));
    assert(!log.lines.some((l) => l.includes("PRIVATE KEY")), "the key must never be logged");
    const again = await loadOrCreateSeedCa({ ...opts, create: true });
    assertEquals(again.activeRootId, made.activeRootId);
    assertEquals(again.roots[0]!.certPem, made.roots[0]!.certPem);
    assertEquals([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name).sort(), [
      "ca.key",
      "ca.pem",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadOrCreateSeedCa() names the file at fault", async () => {
  const dir = await tmp();
  const ca = await createCa({ trustDomain: TD, now: NOW });
  const other = await createCa({ trustDomain: TD, now: NOW });
  const certFile = `${dir}/ca.pem`;
  const keyFile = `${dir}/ca.key`;
  const load = () =>
    loadOrCreateSeedCa({ certFile, keyFile, trustDomain: TD, create: true, now: NOW });
  const expectFile = async (file: string, re: RegExp) => {
    const e = await assertRejects(load(), SeedCaError);
    assertEquals(e.file, file);
    assertMatch(e.message, re);
  };
  try {
    await Deno.writeTextFile(certFile, ca.roots[0]!.certPem);
    await expectFile(keyFile, /missing/);
    await Deno.remove(certFile);
    await Deno.writeTextFile(keyFile, ca.roots[0]!.keyPem, { mode: 0o600 });
    await expectFile(certFile, /missing/);
    await Deno.writeTextFile(certFile, "hello");
    await expectFile(certFile, /no PEM certificate/);
    await Deno.writeTextFile(certFile, ca.roots[0]!.certPem);
    await Deno.writeTextFile(keyFile, "garbage");
    await expectFile(keyFile, /PKCS#8/);
    await Deno.writeTextFile(keyFile, other.roots[0]!.keyPem);
    await expectFile(keyFile, /does not match/);
    await Deno.writeTextFile(keyFile, ca.roots[0]!.keyPem);
    const asDir = await assertRejects(
      loadOrCreateSeedCa({ certFile: dir, keyFile, trustDomain: TD, create: true, now: NOW }),
      SeedCaError,
    );
    assertEquals(asDir.file, dir);
    assertMatch(asDir.message, /not a regular file/);
    const e = await assertRejects(
      loadOrCreateSeedCa({
        certFile,
        keyFile,
        trustDomain: "other.example",
        create: true,
        now: NOW,
      }),
      SeedCaError,
    );
    assertEquals(e.file, certFile);
    assertEquals((await load()).activeRootId, ca.activeRootId);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeSeedCa() writes the active root and refuses to overwrite", async () => {
  const dir = await tmp();
  try {
    const ca = await createCa({ trustDomain: TD, now: NOW });
    const files = await writeSeedCa(`${dir}/out`, ca);
    assertEquals(await Deno.readTextFile(files.certFile), ca.roots[0]!.certPem);
    assertEquals((await Deno.stat(files.keyFile)).mode! & 0o777, 0o600);
    const loaded = await loadOrCreateSeedCa({
      ...files,
      trustDomain: TD,
      create: false,
      now: NOW,
    });
    assertEquals(loaded.activeRootId, ca.activeRootId);
    const e = await assertRejects(writeSeedCa(`${dir}/out`, ca), SeedCaError);
    assertEquals(e.file, files.certFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an offline-root seed loads from the root certificate and the intermediate pair, never a root key", async () => {
  const dir = await tmp();
  try {
    const made = await createOfflineRootCa({ trustDomain: TD, now: NOW });
    const w = await writeOfflineSeed(`${dir}/seed`, made.state);
    assertEquals((await Deno.stat(w.intermediateKeyFile)).mode! & 0o777, 0o600);
    const load = () =>
      loadOrCreateSeedCa({
        certFile: w.certFile,
        keyFile: `${dir}/seed/ca.key`,
        intermediateCertFile: w.intermediateCertFile,
        intermediateKeyFile: w.intermediateKeyFile,
        trustDomain: TD,
        create: true,
        now: NOW,
      });
    const st = await load();
    assertEquals(st, made.state);
    // A root key left beside the intermediate is refused, naming it.
    await Deno.writeTextFile(`${dir}/seed/ca.key`, made.root.keyPem);
    const e = await assertRejects(load, SeedCaError);
    assertMatch(e.message, /ca\.key: a root key beside the intermediate/);
    await Deno.remove(`${dir}/seed/ca.key`);
    // Half an intermediate pair is refused, naming the missing file; nothing is created.
    await Deno.remove(w.intermediateKeyFile);
    const e2 = await assertRejects(load, SeedCaError);
    assertMatch(e2.message, /intermediate\.key: missing/);
    await assertRejects(() => writeSeedCa(`${dir}/other`, made.state), CaError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
