/**
 * The emergency distrust with real processes: right after a new intermediate is installed,
 * `skein ctl ca distrust-intermediate OLD --now` is accepted although members still hold leaves
 * of the old one, and a leaf minted with the old intermediate's key is refused at once at a
 * proxy's inbound and at the control API, where it was accepted a moment before.
 * @module
 */
import { assertEquals, assertMatch } from "../assert.ts";
import { ProcessCluster } from "../control_process/cluster.ts";
import { type ProxyHandle, startApp, startProxy, waitFor } from "../proxy_process/helpers.ts";
import { runSkein } from "../skein_cli.ts";
import { trustRoots } from "../tls_fixture.ts";
import { mtlsGet } from "./_traffic.ts";
import { ctlAt, joinTokenFile, mintWithIntermediate } from "./_offline_root.ts";

const TD = "skein.local";

Deno.test("distrust-intermediate --now cuts off leaves of the old intermediate at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-distrust-now-" });
  const rootDir = `${dir}/offline-root`;
  const seedDir = `${dir}/seed`;
  const app = startApp("ledger");
  let proxy: ProxyHandle | null = null;
  let cluster: ProcessCluster | null = null;
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
    const oldPair = {
      certPem: await Deno.readTextFile(`${seedDir}/intermediate.pem`),
      keyPem: await Deno.readTextFile(`${seedDir}/intermediate.key`),
    };
    cluster = await ProcessCluster.create({
      size: 1,
      baseDir: `${dir}/cp`,
      tls: `{ ca_cert_file: ${seedDir}/ca.pem, ca_key_file: ${seedDir}/ca.key }`,
    });
    await cluster.startAll();
    const leader = await cluster.waitLeader(60_000);
    const token = await cluster.waitAdminToken(undefined, leader, 60_000);
    const ctl = ctlAt(cluster.api(leader), token, `${seedDir}/ca.pem`);
    proxy = await startProxy(dir, {
      node: "vm-ledger",
      token_file: await joinTokenFile(cluster.api(leader), dir, "ledger"),
      ca_file: `${seedDir}/ca.pem`,
      control: [cluster.api(leader)],
      workers: 1,
      services: [{ name: "ledger", port: app.port }],
    });

    const { minted, intermediate: oldIntermediate } = await mintWithIntermediate(
      cluster.api(leader),
      rootPem,
      oldPair,
      TD,
      "web",
    );
    const inbound = proxy.inbound;
    const atInbound = () =>
      mtlsGet(inbound, minted, rootPem, `spiffe://${TD}/svc/ledger`, {
        path: "/",
        host: "ledger",
        servername: `ledger.svc.${TD}`,
      });
    const atApi = () =>
      mtlsGet(cluster!.api(leader), minted, rootPem, `spiffe://${TD}/control/${leader}`, {
        path: "/v1/ca/roots",
        host: "control",
      });
    await waitFor(
      "the proxy to serve its inbound",
      async () => /^HTTP\/1\.1 200 /.test(await atInbound()),
      60_000,
    );

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
    const installed = await ctl([
      "ca",
      "rotate",
      "--intermediate-cert",
      `${dir}/next/intermediate.pem`,
      "--intermediate-key",
      `${dir}/next/intermediate.key`,
    ]);
    assertEquals(installed.code, 0, installed.stderr);
    assertMatch(await atInbound(), /^HTTP\/1\.1 200 /, "trusted until the distrust");
    assertMatch(await atApi(), /^HTTP\/1\.1 200 /);

    const now = await ctl(["ca", "distrust-intermediate", oldIntermediate.id, "--now"]);
    assertEquals(now.code, 0, now.stderr);
    assertMatch(
      now.stdout,
      new RegExp(`${oldIntermediate.id}\\s+\\S+\\s+\\S+Z\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z`),
    );
    await waitFor(
      "the inbound to refuse the minted leaf",
      async () => (await atInbound()) === "",
      60_000,
    );
    await waitFor("the API to refuse the minted leaf", async () => (await atApi()) === "", 60_000);
    const roots = await ctl(["ca", "roots"]);
    assertEquals(roots.code, 0, roots.stderr);
    assertMatch(
      roots.stdout,
      new RegExp(`rotated-out intermediate ${oldIntermediate.id}: distrusted since`),
    );
    const again = await ctl(["ca", "distrust-intermediate", oldIntermediate.id, "-o", "json"]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(JSON.parse(again.stdout).changed, false);
  } finally {
    await proxy?.child.stop();
    await cluster?.destroy();
    await app.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
