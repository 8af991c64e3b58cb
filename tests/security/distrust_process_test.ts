/**
 * Distrusting a rotated-out intermediate with real processes: an offline-root cluster of two
 * control nodes and two proxies passing mTLS traffic; an operator installs a new intermediate
 * and asks to distrust the old one at once, which is refused (members still hold its leaves);
 * once every member has moved and the old leaves have expired the same command succeeds, the
 * traffic keeps flowing with no failed request, and a leaf minted with the OLD intermediate's
 * key (which this test, like an attacker who stole it, holds) is refused at a proxy's inbound
 * and at the control API, where it was accepted before the distrust.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { ProcessCluster, request } from "../control_process/cluster.ts";
import { type ProxyHandle, startApp, startProxy, waitFor } from "../proxy_process/helpers.ts";
import { runSkein } from "../skein_cli.ts";
import { trustRoots } from "../tls_fixture.ts";
import { splitPemCerts } from "../../common/tls/mod.ts";
import { freshGet, mtlsGet, pooledGet, Traffic } from "./_traffic.ts";
import { ctlAt, joinTokenFile, mintWithIntermediate } from "./_offline_root.ts";

const TD = "skein.local";

Deno.test("distrusting a rotated-out intermediate waits for every member, keeps traffic flowing, and refuses leaves minted with its key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-distrust-" });
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
      TD,
    ]);
    assertEquals(made.code, 0, made.stderr);
    const rootPem = await Deno.readTextFile(`${rootDir}/ca.pem`);
    trustRoots([rootPem]);
    // What an attacker who copied a control node's disk holds: the first intermediate's pair.
    const oldPair = {
      certPem: await Deno.readTextFile(`${seedDir}/intermediate.pem`),
      keyPem: await Deno.readTextFile(`${seedDir}/intermediate.key`),
    };

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
    const ctl = ctlAt(cluster.api(leader), token, `${seedDir}/ca.pem`);

    const joinToken = (service: string) => joinTokenFile(cluster!.api(leader), dir, service);
    for (const [node, service] of [["vm-ledger", "ledger"], ["vm-web", "web"]] as const) {
      proxies.set(
        node,
        await startProxy(dir, {
          node,
          token_file: await joinToken(service),
          ca_file: `${seedDir}/ca.pem`,
          control: urls,
          workers: 1,
          services: [{ name: service, port: app.port }],
          ...(service === "web"
            ? { upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }] }
            : {}),
        }),
      );
    }
    const upstream = () => proxies.get("vm-web")!.upstreams.ledger!;
    await waitFor("web to reach ledger through mTLS", async () => {
      await pooledGet(upstream());
      return true;
    }, 60_000);

    // A leaf for web minted with the old intermediate's key, as an attacker would.
    const { minted, intermediate: oldIntermediate } = await mintWithIntermediate(
      cluster.api(leader),
      rootPem,
      oldPair,
      TD,
      "web",
    );
    assertEquals(splitPemCerts(minted.certPem)[1], oldPair.certPem, "leaf + old intermediate");
    const atInbound = () =>
      mtlsGet(proxies.get("vm-ledger")!.inbound, minted, rootPem, `spiffe://${TD}/svc/ledger`, {
        path: "/",
        host: "ledger",
        servername: `ledger.svc.${TD}`,
      });
    const atApi = () =>
      mtlsGet(cluster!.api(leader), minted, rootPem, `spiffe://${TD}/control/${leader}`, {
        path: "/v1/ca/roots",
        host: "control",
      });

    traffic = new Traffic(upstream, [["mux", pooledGet], ["fresh", freshGet]]);
    const { counts, failures } = traffic;
    await waitFor("traffic to flow", () => counts.mux > 20 && counts.fresh > 5, 60_000);

    // Rotate the intermediate, signed where the root key is kept.
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
    const installed = await ctl([
      "ca",
      "rotate",
      "--intermediate-cert",
      `${dir}/next/intermediate.pem`,
      "--intermediate-key",
      `${dir}/next/intermediate.key`,
    ]);
    assertEquals(installed.code, 0, installed.stderr);
    const t0 = performance.now();

    // Still trusted: the minted leaf gets through at the inbound and the API (so the refusals
    // further down are the distrust's doing).
    assertMatch(await atInbound(), /^HTTP\/1\.1 200 [\s\S]*ledger$/);
    assertMatch(await atApi(), /^HTTP\/1\.1 200 /);

    // Distrusting at once is refused: leaves from it are valid for up to a minute yet.
    const early = await ctl(["ca", "distrust-intermediate", oldIntermediate.id]);
    assert(early.code !== 0, early.stdout);
    assertMatch(early.stderr, /intermediate_in_use|would cut off members/);
    assertMatch(early.stderr, /--now/);
    // Unknown and active intermediates: clear refusals.
    const unknown = await ctl(["ca", "distrust-intermediate", "0123abcd"]);
    assert(unknown.code !== 0);
    assertMatch(unknown.stderr, /no rotated-out intermediate/);
    const active = await ctl([
      "ca",
      "distrust-intermediate",
      new X509Certificate(nextIntermediate).fingerprint256,
    ]);
    assert(active.code !== 0);
    assertMatch(active.stderr, /signs leaves now/);
    const view = await request(`${cluster.api(leader)}/v1/ca/rotation`, "GET");
    assertEquals(view.status, 200);

    // Once every member holds a leaf of the new intermediate and the old leaves have expired,
    // the same request is accepted.
    await waitFor("both proxies to hold leaves from the new intermediate", async () => {
      for (const name of ["vm-ledger", "vm-web"]) {
        const chain = splitPemCerts(await Deno.readTextFile(`${dir}/${name}-data/cert.pem`));
        if (chain[1] !== nextIntermediate) return false;
      }
      return true;
    }, 150_000);
    const before = { ...counts };
    let lastRefusal = "";
    await waitFor("the distrust to be accepted", async () => {
      const r = await request(
        `${cluster!.api(leader)}/v1/ca/distrust-intermediate`,
        "POST",
        { intermediate: oldIntermediate.id },
      );
      if (r.status === 200) return true;
      lastRefusal = JSON.stringify(r.json);
      assertEquals(r.status, 409, lastRefusal);
      await new Promise((res) => setTimeout(res, 1_000));
      return false;
    }, 150_000).catch((e) => {
      throw new Error(`${e}; last refusal ${lastRefusal}`);
    });
    const t1 = performance.now();

    // The minted leaf is refused at the proxy's inbound and at the control API (every proxy
    // and node hears the list through the catalog / the replicated CA state).
    await waitFor(
      "the inbound to refuse the minted leaf",
      async () => (await atInbound()) === "",
      60_000,
    );
    await waitFor("the API to refuse the minted leaf", async () => (await atApi()) === "", 60_000);
    const catalog = await request(`${cluster.api(leader)}/v1/catalog`, "GET");
    assertEquals(
      (catalog.json!.trust as { distrusted?: string[] }).distrusted,
      [oldPair.certPem],
    );

    // Traffic between the proxies kept flowing through all of it.
    await waitFor(
      "traffic after the distrust",
      () => counts.mux > before.mux + 20 && counts.fresh > before.fresh + 10,
      60_000,
    );
    await traffic.stop();
    console.log(
      `distrust: accepted ${((t1 - t0) / 1000).toFixed(1)} s after the intermediate install ` +
        `(proxy_cert_ttl 1m); totals ${JSON.stringify(counts)}`,
    );
    assertEquals(failures, [], `requests failed (${JSON.stringify(counts)})`);
  } finally {
    await traffic?.stop();
    for (const p of proxies.values()) await p.child.stop();
    await cluster?.destroy();
    await app.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
