/** Catalog deltas applied by the proxy: merged into its catalog, refused when off base. */
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import type { Catalog } from "./catalog.ts";
import { applyCatalogDelta, CATALOG_DELTA_HEADER, DeltaBaseError } from "./delta.ts";
import { Discovery } from "./discovery.ts";

const inst = (service: string, id: string) => ({
  id,
  service,
  node: "vm",
  address: "10.0.0.1",
  port: 15443,
  zone: "",
  version: "",
  weight: 1,
  tags: [],
  capabilities: [],
  meta: {},
  health: "passing" as const,
});
const BASE: Catalog = {
  index: 4,
  services: { a: [inst("a", "a1")], b: [inst("b", "b1")] },
  resources: [{ kind: "Policy", service: "a", timeout: "2s" }],
  trust: { roots: [], revoked: [] },
};

Deno.test("applyCatalogDelta() replaces changed services, drops removed ones, keeps the rest", () => {
  const c = applyCatalogDelta(BASE, {
    index: 9,
    delta: { from: 4, services: { c: [inst("c", "c1")] }, removed: ["b"] },
  });
  assertEquals(Object.keys(c.services).sort(), ["a", "c"]);
  assertEquals(c.services.a, BASE.services.a);
  assertEquals(c.resources, BASE.resources);
  assertEquals(c.index, 9);
  // The base is not changed in place: it may still be in use.
  assertEquals(Object.keys(BASE.services).sort(), ["a", "b"]);
  const t = applyCatalogDelta(BASE, {
    index: 9,
    delta: { from: 4, services: {}, removed: [], trust: { roots: ["R"], revoked: ["x"] } },
  });
  assertEquals(t.trust.revoked, ["x"]);
  assertThrows(
    () => applyCatalogDelta(BASE, { index: 9, delta: { from: 3, services: {}, removed: [] } }),
    DeltaBaseError,
  );
});

Deno.test("the proxy applies deltas to its catalog and asks for it whole after a delta off base", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-delta-" });
  const asked: { index: string | null; delta: boolean }[] = [];
  // Answers in order, one per catalog query: whole, a delta, a garbled delta, a delta off
  // base, then whole again, then blocks until the test ends.
  const answers: unknown[] = [
    BASE,
    { index: 6, delta: { from: 4, services: { c: [inst("c", "c1")] }, removed: ["b"] } },
    { index: 7, delta: { from: 6, services: { c: "nope" }, removed: [] } },
    { index: 8, delta: { from: 5, services: {}, removed: ["a"] } },
    { ...BASE, index: 8, services: { a: BASE.services.a } },
  ];
  const fake: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    if (url.pathname !== "/v1/catalog") return Response.json({ accepted: 0 });
    asked.push({
      index: url.searchParams.get("index"),
      delta: new Headers(init?.headers).get(CATALOG_DELTA_HEADER) === "1",
    });
    const a = answers.shift();
    if (a === undefined) {
      await new Promise((r) => init?.signal?.addEventListener("abort", r));
      throw new DOMException("aborted", "AbortError");
    }
    return Response.json(a);
  };
  const seen: Catalog[] = [];
  const d = new Discovery({
    node: "n",
    zone: "",
    advertise: "127.0.0.1",
    inboundPort: 1,
    controlUrls: ["https://a"],
    dataDir: dir,
    services: [],
    heartbeatIntervalMs: 1000,
    logger: nullLogger,
    fetch: fake,
    onCatalog: (c) => seen.push(c),
    watchWaitMs: 1000,
    backoffBaseMs: 10,
  });
  try {
    await d.start();
    for (let i = 0; i < 500 && answers.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (let i = 0; i < 500 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await d.stop(10);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  assertEquals(seen.map((c) => c.index), [4, 6, 8]);
  assertEquals(Object.keys(seen[1]!.services).sort(), ["a", "c"]);
  assertEquals(Object.keys(seen[2]!.services), ["a"]);
  // The first query is whole; blocking ones ask for deltas; after the delta off base the
  // proxy asks for the whole catalog, without the header.
  assertEquals(asked.slice(0, 5), [
    { index: null, delta: false },
    { index: "4", delta: true },
    { index: "6", delta: true },
    { index: "6", delta: true },
    { index: null, delta: false },
  ]);
  assert(d.status().watchFailures >= 2);
});
