/**
 * The CA's chains checked by an outside verifier (openssl verify), and a rotation on a live
 * mTLS server: clients with leaves from the old and the new root both connect during the
 * overlap; after finishRotation only new-root leaves do.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  activateRoot,
  finishRotation,
  revocationChecker,
  rotateCa,
  trustBundle,
  trustBundlePem,
} from "../../control/ca/mod.ts";
import { mtlsConnect } from "../../common/tls/mod.ts";
import { leaf, run, testCa, whoamiServer, writePair } from "./_pki.ts";

Deno.test("openssl verify accepts CA-signed leaves and refuses others", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_ca_" });
  try {
    const ca = await testCa();
    const other = await testCa();
    await Deno.writeTextFile(`${dir}/ca.pem`, trustBundlePem(ca));
    const good = await writePair(dir, "good", await leaf(ca, "payments"));
    const cp = await writePair(
      dir,
      "cp",
      await leaf(ca, "x", { identity: { kind: "control", node: "cp-1" } }),
    );
    const bad = await writePair(dir, "bad", await leaf(other, "payments"));
    const verify = (cert: string) =>
      run("openssl", ["verify", "-CAfile", `${dir}/ca.pem`, "-purpose", "sslclient", cert]);
    const ok = await verify(good.cert);
    assertEquals(ok.code, 0, ok.stdout + ok.stderr);
    assertMatch(ok.stdout, /: OK/);
    assertEquals((await verify(cp.cert)).code, 0);
    const srv = await run("openssl", [
      "verify",
      "-CAfile",
      `${dir}/ca.pem`,
      "-purpose",
      "sslserver",
      good.cert,
    ]);
    assertEquals(srv.code, 0, srv.stderr);
    const no = await verify(bad.cert);
    assert(no.code !== 0, "a leaf of another CA must not verify");
    const text = await run("openssl", [
      "x509",
      "-in",
      good.cert,
      "-noout",
      "-ext",
      "subjectAltName,basicConstraints",
    ]);
    assertMatch(text.stdout, /URI:spiffe:\/\/skein\.local\/svc\/payments/);
    assertMatch(text.stdout, /CA:FALSE/);
    const root = await run("openssl", [
      "x509",
      "-in",
      `${dir}/ca.pem`,
      "-noout",
      "-ext",
      "basicConstraints",
    ]);
    assertMatch(root.stdout, /CA:TRUE/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rotation: old-root and new-root clients both connect during the overlap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_rot_" });
  const ca1 = await testCa();
  const oldClient = await leaf(ca1, "payments");
  // Step 1: stage the new root (trusted, not yet signing) and spread the bundle.
  const staged = await rotateCa(ca1, { now: Date.now(), activate: false });
  assertEquals(trustBundle(staged).length, 2);
  // Step 2: activate it; new leaves come from the new root.
  const ca2 = activateRoot(staged, staged.roots[1]!.id);
  const newClient = await leaf(ca2, "billing");
  const server = await leaf(ca2, "ledger");
  const { srv, port, seen } = await whoamiServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: trustBundlePem(ca2),
    isRevoked: revocationChecker(ca2),
  });
  const ask = async (c: { certPem: string; keyPem: string }, caPem: string) => {
    const s = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: c.certPem,
      key: c.keyPem,
      ca: caPem,
      expectSpiffe: "spiffe://skein.local/svc/ledger",
    });
    return await new Promise<string>((resolve) => {
      let got = "";
      s.on("data", (d: Uint8Array) => (got += new TextDecoder().decode(d)));
      s.on("error", () => {});
      s.on("close", () => resolve(got));
      s.write("GET / HTTP/1.1\r\nconnection: close\r\n\r\n");
    });
  };
  try {
    // The old client learned the new bundle in step 1, so it trusts the new server leaf.
    assertMatch(await ask(oldClient, trustBundlePem(staged)), /200 OK/);
    assertMatch(await ask(newClient, trustBundlePem(ca2)), /200 OK/);
    assertEquals(seen, ["spiffe://skein.local/svc/payments", "spiffe://skein.local/svc/billing"]);
    // Step 3: finish; the server drops the old root from its bundle.
    const ca3 = finishRotation(ca2);
    srv.updateMaterial({
      certPem: server.certPem,
      keyPem: server.keyPem,
      caPem: trustBundlePem(ca3),
    });
    assertEquals(await ask(oldClient, trustBundlePem(staged)), "", "old-root leaf refused");
    assertMatch(await ask(newClient, trustBundlePem(ca3)), /200 OK/);
    // openssl agrees: the new bundle no longer vouches for the old leaf.
    await Deno.writeTextFile(`${dir}/ca3.pem`, trustBundlePem(ca3));
    const old = await writePair(dir, "old", oldClient);
    assert((await run("openssl", ["verify", "-CAfile", `${dir}/ca3.pem`, old.cert])).code !== 0);
  } finally {
    await srv.close({ destroyConnections: true });
    await Deno.remove(dir, { recursive: true });
  }
});
