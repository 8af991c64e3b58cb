/**
 * A control node started from an empty data directory with seed files made before the cluster
 * rotated its CA: it is told which files to refresh and how, and joins once they are the ones
 * `skein ctl ca export-seed` writes. Real `skein control` processes.
 */
import { assert, assertEquals } from "../assert.ts";
import { ProcessCluster, request, waitFor } from "../control_process/cluster.ts";
import { sharedSeed, trustRoots } from "../tls_fixture.ts";
import { writeExportedSeed } from "../../cmd/ctl/ca_format.ts";

Deno.test("a node with pre-rotation seed files is told which files to refresh, then joins with the exported seed", async () => {
  const c = await ProcessCluster.create({ size: 1 });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const token = await c.waitAdminToken("cp-1", leader);
    const api = (method: string, path: string, body?: unknown, timeoutMs = 10_000) =>
      request(`${c.api("cp-1")}${path}`, method, body, timeoutMs, token);

    // A whole rotation, carried through by the leader: the seed's root leaves the bundle.
    const seed = await sharedSeed();
    // The first leader proposes the seed as the cluster CA just after it is elected.
    const rot = await waitFor("the cluster CA", 30_000, async () => {
      const r = await api("POST", "/v1/ca/rotate", {});
      if (r.status === 503 && (r.json?.error as { code?: string })?.code === "no_ca") {
        return undefined;
      }
      assertEquals(r.status, 200, JSON.stringify(r.json));
      return r;
    });
    const ca = rot.json!.ca as { roots: { certPem: string }[] };
    trustRoots(ca.roots.map((r) => r.certPem));
    await waitFor("the rotation to finish", 120_000, async () => {
      const s = await api("GET", "/v1/ca/rotation");
      return s.status === 200 && s.json!.rotation === null ? true : undefined;
    });
    const roots = await api("GET", "/v1/ca/roots");
    assertEquals((roots.json!.roots as string[]).length, 1);
    const newRoot = roots.json!.active_root_id as string;
    assert(newRoot !== seed.state.activeRootId, "the seed's root is no longer trusted");

    // cp-2 starts empty from the old seed files (the fixture's), and is added as a member.
    const j = await c.addJoiner("cp-2");
    await c.start("cp-2");
    const member = { node: "cp-2", address: `127.0.0.1:${j.raftPort}`, api: c.api("cp-2") };
    // It cannot catch up, so the add ends with it left a learner (not a voter: quorum is safe).
    const first = await api("POST", "/v1/members", member, 30_000);
    assert(first.status !== 201, `cp-2 cannot have caught up: ${JSON.stringify(first.json)}`);
    // Both ends say it, and name what to compare to tell which node holds the old files.
    await waitFor("cp-2 and cp-1 to say which files to refresh", 30_000, () => {
      const e2 = c.node("cp-2").stderr;
      const e1 = c.node("cp-1").stderr;
      return e2.includes("skein ctl ca export-seed") && e2.includes("tls.ca_cert_file") &&
          e2.includes(`this node trusts root ${seed.state.activeRootId};`) &&
          e1.includes(`this node trusts root ${newRoot};`) &&
          e1.includes("the files to refresh are peer cp-2's")
        ? true
        : undefined;
    });

    // The operator does what the line says.
    const exp = await api("POST", "/v1/ca/export-seed", {});
    assertEquals(exp.status, 200);
    const fresh = await writeExportedSeed(exp.json!, `${c.baseDir}/cp-2/seed`);
    await c.signal("cp-2", "SIGTERM");
    await Deno.remove(j.dataDir, { recursive: true });
    const cfg = await Deno.readTextFile(j.configPath);
    const oldTls = `ca_cert_file: ${seed.certFile}, ca_key_file: ${seed.keyFile}`;
    assert(cfg.includes(oldTls), cfg);
    await Deno.writeTextFile(
      j.configPath,
      cfg.replace(oldTls, `ca_cert_file: ${fresh.certFile}, ca_key_file: ${fresh.keyFile}`),
    );
    await c.start("cp-2");
    const again = await api("POST", "/v1/members", member, 30_000);
    assertEquals(again.status, 201, JSON.stringify(again.json));
    await waitFor("cp-2 to follow cp-1", 30_000, async () => {
      const h = await c.health("cp-2");
      return h?.role === "follower" && h.leader === "cp-1" ? true : undefined;
    });
    await c.waitConverged(30_000, ["cp-1", "cp-2"]);
  } finally {
    await c.destroy();
  }
});
