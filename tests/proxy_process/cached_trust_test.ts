/**
 * A proxy restarted while no control node answers serves from its catalog cache, and the
 * cache's revocations apply from the first connection (regression: the cached trust arrived
 * while the proxy was still starting and was dropped, so a revoked caller got through).
 */
import { assert } from "../assert.ts";
import { revokeService, startApp, startControl, startProxy, waitFor } from "./helpers.ts";
import { meshClient, sharedSeed } from "../tls_fixture.ts";
import { sClientGet, writePair } from "../security/_pki.ts";

Deno.test("cached revocations are enforced after a restart without control plane", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-cached-trust-" });
  const cp = await startControl(dir);
  const app = startApp("ledger");
  const cfg = {
    node: "vm-ledger",
    control: [cp.url],
    workers: 1,
    services: [{ name: "ledger", port: app.port }],
  };
  let callee = await startProxy(dir, cfg);
  try {
    await revokeService(cp, "mallory");
    const seed = await sharedSeed();
    const p = await writePair(dir, "mallory", await meshClient("mallory"));
    const mallory = ["-CAfile", seed.certFile, "-cert", p.cert, "-key", p.key];
    await waitFor(
      "revocation reaches the proxy",
      async () => !/HTTP\/1\.1/.test(await sClientGet(callee.inbound, mallory)),
      15_000,
    );
    // The cache on disk carries the revocation.
    const cached = JSON.parse(await Deno.readTextFile(`${dir}/vm-ledger-data/catalog.json`));
    assert(cached.catalog.trust.revoked.includes("spiffe://skein.local/svc/mallory"));
    // Restart the proxy with the control plane gone.
    await callee.child.stop();
    await cp.child.stop();
    callee = await startProxy(dir, cfg);
    await callee.child.waitLine(/serving from the cached catalog/);
    const out = await sClientGet(callee.inbound, mallory);
    assert(!/HTTP\/1\.1 200/.test(out), "revoked identity admitted after restart from cache");
  } finally {
    await callee.child.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
