/**
 * A lagging control node answering the proxy's stale watch with an older catalog must not undo
 * a revocation or an intermediate's distrust the proxy already applied (regression from a
 * review: it did).
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { Discovery } from "./discovery.ts";

const MALLORY = "spiffe://skein.local/svc/mallory";
const OLD_INTERMEDIATE = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";

Deno.test("an older catalog from a lagging node keeps the revocations and distrusts already applied", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-rollback-" });
  const root = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const fresh = {
    index: 10,
    services: {},
    resources: [],
    trust: { roots: [root], revoked: [MALLORY], distrusted: [OLD_INTERMEDIATE] },
  };
  const old = { index: 5, services: {}, resources: [], trust: { roots: [root], revoked: [] } };
  let aUp = true;
  // Node a answers the fresh catalog, then dies during the blocking query; node b lags.
  const fake: typeof fetch = async (input) => {
    const url = String(input);
    if (url.startsWith("https://a")) {
      if (!aUp) throw new TypeError("connection refused");
      if (url.includes("index=10")) {
        await new Promise((r) => setTimeout(r, 200));
        aUp = false;
        throw new TypeError("reset");
      }
      return Response.json(fresh);
    }
    await new Promise((r) => setTimeout(r, 50));
    return Response.json(old);
  };
  const seen: { index: number; revoked: readonly string[]; distrusted?: readonly string[] }[] = [];
  const d = new Discovery({
    node: "n",
    zone: "",
    advertise: "127.0.0.1",
    inboundPort: 1,
    controlUrls: ["https://a", "https://b"],
    dataDir: dir,
    services: [],
    heartbeatIntervalMs: 1000,
    logger: nullLogger,
    fetch: fake,
    onCatalog: (c) =>
      seen.push({ index: c.index, revoked: c.trust.revoked, distrusted: c.trust.distrusted }),
    watchWaitMs: 1000,
    backoffBaseMs: 10,
    // The watch starts at node a (the first URL), which knows the fresh catalog.
    random: () => 0,
  });
  try {
    await d.start();
    for (let i = 0; i < 200 && !seen.some((s) => s.index === 5); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await d.stop(10);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  assertEquals(seen[0], { index: 10, revoked: [MALLORY], distrusted: [OLD_INTERMEDIATE] });
  const older = seen.find((s) => s.index === 5);
  assert(older !== undefined, JSON.stringify(seen));
  assertEquals(older.revoked, [MALLORY], "the older catalog must not readmit mallory");
  assertEquals(older.distrusted, [OLD_INTERMEDIATE], "nor trust the old intermediate again");
});
