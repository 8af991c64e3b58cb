/**
 * Offline root, online intermediate, with real processes: `skein ca create --offline-root`
 * writes the root pair to a directory the control nodes never see; a two-node cluster starts
 * from the root certificate and the intermediate alone (Raft transport, the API's client
 * certificate check and `skein ctl` with `--ca-file` = the root all verify leaf →
 * intermediate → root); two proxies pass mTLS traffic; the root key is in no file the nodes or
 * proxies wrote. Then, with traffic flowing, `skein ca intermediate` signs a new intermediate
 * offline and `skein ctl ca rotate --intermediate-cert … --intermediate-key …` installs it
 * (one from another root is refused first): every member moves to leaves from the new
 * intermediate, leaves from the old one keep working until they are renewed and expire, and
 * no request fails.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { ProcessCluster, request, waitFor as waitForCluster } from "../control_process/cluster.ts";
import { type ProxyHandle, startApp, startProxy, waitFor } from "../proxy_process/helpers.ts";
import { runSkein } from "../skein_cli.ts";
import { trustRoots } from "../tls_fixture.ts";
import { splitPemCerts } from "../../common/tls/mod.ts";
import { run } from "./_pki.ts";
import { freshGet, pooledGet, Traffic } from "./_traffic.ts";
import { ctlAt, joinTokenFile } from "./_offline_root.ts";

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await filesUnder(p));
    else if (e.isFile) out.push(p);
  }
  return out;
}

Deno.test("a cluster from an offline-root seed serves mTLS traffic, and an intermediate rotation under traffic fails no request", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-offline-root-" });
  const rootDir = `${dir}/offline-root`;
  const seedDir = `${dir}/seed`;
  const app = startApp("ledger");
  const proxies = new Map<string, ProxyHandle>();
  let cluster: ProcessCluster | null = null;
  let traffic: Traffic | null = null;
  try {
    const made = await runSkein([
      "ca",
      "create",
      "--offline-root",
      rootDir,
      "--out",
      seedDir,
      "--trust-domain",
      "skein.local",
    ]);
    assertEquals(made.code, 0, made.stderr);
    assertMatch(made.stdout, /move .*offline-root off this machine/);
    const seedFiles = [...Deno.readDirSync(seedDir)].map((e) => e.name).sort();
    assertEquals(seedFiles, ["ca.pem", "intermediate.key", "intermediate.pem"]);
    const rootPem = await Deno.readTextFile(`${rootDir}/ca.pem`);
    const rootKeyPem = await Deno.readTextFile(`${rootDir}/ca.key`);
    const firstIntermediate = await Deno.readTextFile(`${seedDir}/intermediate.pem`);
    // This test's HTTPS client trusts the offline root (like an operator's --ca-file).
    trustRoots([rootPem]);

    cluster = await ProcessCluster.create({
      size: 2,
      baseDir: `${dir}/cp`,
      tls:
        `{ ca_cert_file: ${seedDir}/ca.pem, ca_key_file: ${seedDir}/ca.key, proxy_cert_ttl: 1m }`,
    });
    await cluster.startAll();
    const leader = await cluster.waitLeader(60_000);
    await cluster.waitConverged(60_000);
    const token = await cluster.waitAdminToken(undefined, leader, 60_000);
    const urls = cluster.ids().map((id) => cluster!.api(id));
    const ca0 = await request(`${cluster.api(leader)}/v1/ca/rotation`, "GET");
    assertEquals(ca0.status, 200, JSON.stringify(ca0.json));

    // skein ctl reaches the API with the root alone as its trust anchor.
    const ctl = ctlAt(cluster.api(leader), token, `${seedDir}/ca.pem`);
    const roots = await ctl(["ca", "roots", "-o", "json"]);
    assertEquals(roots.code, 0, roots.stderr);
    assertEquals(JSON.parse(roots.stdout).roots, [rootPem]);

    const joinToken = (service: string) => joinTokenFile(cluster!.api(leader), dir, service);
    proxies.set(
      "vm-ledger",
      await startProxy(dir, {
        node: "vm-ledger",
        token_file: await joinToken("ledger"),
        ca_file: `${seedDir}/ca.pem`,
        control: urls,
        workers: 1,
        services: [{ name: "ledger", port: app.port }],
      }),
    );
    proxies.set(
      "vm-web",
      await startProxy(dir, {
        node: "vm-web",
        token_file: await joinToken("web"),
        ca_file: `${seedDir}/ca.pem`,
        control: urls,
        workers: 1,
        services: [{ name: "web", port: app.port }],
        upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
      }),
    );
    const upstream = () => proxies.get("vm-web")!.upstreams.ledger!;
    await waitFor("web to reach ledger through mTLS", async () => {
      await pooledGet(upstream());
      return true;
    }, 60_000);

    // Every leaf carries its chain: leaf, then the intermediate; openssl verifies it against
    // the root alone, and not without the intermediate.
    for (const name of ["vm-ledger", "vm-web"]) {
      const chain = splitPemCerts(await Deno.readTextFile(`${dir}/${name}-data/cert.pem`));
      assertEquals(chain.length, 2, `${name}: leaf + intermediate`);
      assertEquals(chain[1], firstIntermediate);
      await Deno.writeTextFile(`${dir}/${name}-leaf.pem`, chain[0]!);
      await Deno.writeTextFile(`${dir}/${name}-int.pem`, chain[1]!);
      const ok = await run("openssl", [
        "verify",
        "-CAfile",
        `${rootDir}/ca.pem`,
        "-untrusted",
        `${dir}/${name}-int.pem`,
        `${dir}/${name}-leaf.pem`,
      ]);
      assertEquals(ok.code, 0, `${name}: ${ok.stdout}${ok.stderr}`);
      const bare = await run("openssl", [
        "verify",
        "-CAfile",
        `${rootDir}/ca.pem`,
        `${dir}/${name}-leaf.pem`,
      ]);
      assert(bare.code !== 0, `${name}: a leaf alone must not verify against the root`);
    }

    traffic = new Traffic(upstream, [["mux", pooledGet], ["mux", pooledGet], ["fresh", freshGet]]);
    const { counts, failures } = traffic;
    await waitFor("traffic to flow", () => counts.mux > 20 && counts.fresh > 5, 60_000);

    // An intermediate signed by another root is refused, and nothing is committed.
    const other = await runSkein([
      "ca",
      "create",
      "--offline-root",
      `${dir}/other-root`,
      "--out",
      `${dir}/other-seed`,
    ]);
    assertEquals(other.code, 0, other.stderr);
    const foreign = await ctl([
      "ca",
      "rotate",
      "--intermediate-cert",
      `${dir}/other-seed/intermediate.pem`,
      "--intermediate-key",
      `${dir}/other-seed/intermediate.key`,
    ]);
    assert(foreign.code !== 0, foreign.stdout);
    assertMatch(foreign.stderr, /intermediate is not signed by the configured root/);
    const unchanged = await request(`${cluster.api(leader)}/v1/ca/roots`, "GET");
    assertEquals(unchanged.json!.roots, [rootPem]);

    // The next intermediate is signed where the root key is kept, then installed.
    const signed = await runSkein([
      "ca",
      "intermediate",
      "--root-cert",
      `${rootDir}/ca.pem`,
      "--root-key",
      `${rootDir}/ca.key`,
      "--out",
      `${dir}/next`,
    ]);
    assertEquals(signed.code, 0, signed.stderr);
    const nextIntermediate = await Deno.readTextFile(`${dir}/next/intermediate.pem`);
    const before = { ...counts };
    const t0 = performance.now();
    const installed = await ctl([
      "ca",
      "rotate",
      "--intermediate-cert",
      `${dir}/next/intermediate.pem`,
      "--intermediate-key",
      `${dir}/next/intermediate.key`,
    ]);
    assertEquals(installed.code, 0, installed.stderr);
    const installedAt = Date.now();

    // Every control node issues itself a leaf from the new intermediate; proxies renew from it.
    await waitForCluster("every control node to re-issue its leaf", 60_000, () => {
      return cluster!.ids().every((id) =>
          /CA signer changed; issuing a new control certificate/.test(cluster!.node(id).stderr)
        )
        ? true
        : undefined;
    });
    await waitFor("both proxies to hold leaves from the new intermediate", async () => {
      for (const name of ["vm-ledger", "vm-web"]) {
        const chain = splitPemCerts(await Deno.readTextFile(`${dir}/${name}-data/cert.pem`));
        if (chain[1] !== nextIntermediate) return false;
      }
      return true;
    }, 150_000);
    const t1 = performance.now();
    // Leaves from the old intermediate were valid at most one minute after the install: keep
    // the traffic going until every one of them has expired.
    await waitFor(
      "the leaves of the old intermediate to expire under traffic",
      () => Date.now() > installedAt + 65_000 && counts.fresh > before.fresh + 10,
      150_000,
    );
    await traffic.stop();
    const during = counts.mux + counts.fresh - before.mux - before.fresh;
    console.log(
      `offline root: ${during} requests from the intermediate install until the old leaves ` +
        `expired; every member on the new intermediate after ${
          ((t1 - t0) / 1000).toFixed(1)
        } s; totals ${JSON.stringify(counts)}`,
    );
    assertEquals(failures, [], `requests failed (${JSON.stringify(counts)})`);
    assert(counts.mux > 20 && counts.fresh > 10, JSON.stringify(counts));
    // Both proxies' chains still verify against the root alone.
    for (const name of ["vm-ledger", "vm-web"]) {
      const pem = await Deno.readTextFile(`${dir}/${name}-data/cert.pem`);
      const [leaf, inter] = splitPemCerts(pem).map((p) => new X509Certificate(p));
      assert(
        leaf!.verify(inter!.publicKey) && inter!.verify(new X509Certificate(rootPem).publicKey),
      );
    }

    // The root key is on no disk the mesh wrote: not in the seed, the control nodes' data
    // (WAL, snapshots), the proxies' data, nor any log; only in the offline directory.
    const keyLines = rootKeyPem.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----"));
    assert(keyLines.length > 0);
    const files = (await filesUnder(dir)).filter((f) =>
      !f.startsWith(`${rootDir}/`) && !f.startsWith(`${dir}/other-root/`)
    );
    assert(files.some((f) => f.includes("/cp/cp-1/data/")), "the control data was scanned");
    for (const f of files) {
      const text = new TextDecoder("latin1").decode(await Deno.readFile(f));
      for (const line of keyLines) assert(!text.includes(line), `root key material in ${f}`);
      assert(!f.endsWith("/ca.key"), `a root key file on a node: ${f}`);
    }
  } finally {
    await traffic?.stop();
    for (const p of proxies.values()) await p.child.stop();
    await cluster?.destroy();
    await app.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
