import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { memoryLogger } from "../../common/log.ts";
import { CATALOG_CACHE_FILE, CatalogCacheError, loadCatalog, saveCatalog } from "./cache.ts";
import { Backoff, ControlClient, ControlUnavailableError } from "./control_client.ts";
import { type Catalog, parseResources } from "./catalog.ts";

const CAT: Catalog = {
  index: 7,
  services: {
    ledger: [{
      id: "vm-1-ledger",
      service: "ledger",
      node: "vm-1",
      address: "10.0.0.1",
      port: 15443,
      zone: "a",
      version: "v1",
      weight: 1,
      tags: [],
      capabilities: [],
      meta: {},
      health: "passing",
    }],
  },
  resources: [{ kind: "Policy", service: "ledger", timeout: "2s" }],
  trust: { roots: [], revoked: [] },
};

Deno.test("saveCatalog() then loadCatalog() round-trips and leaves no temp file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await loadCatalog(dir), null);
    await saveCatalog(`${dir}/sub`, CAT);
    assertEquals(await loadCatalog(`${dir}/sub`), CAT);
    const names = [...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name);
    assertEquals(names, [CATALOG_CACHE_FILE]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadCatalog() rejects a corrupt cache with the file named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/${CATALOG_CACHE_FILE}`, '{"catalog": {"index": -1}}');
    const e = await assertRejects(loadCatalog(dir), CatalogCacheError);
    assert(e.message.includes(CATALOG_CACHE_FILE));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseResources() keeps valid resources and skips unreadable ones", () => {
  const log = memoryLogger();
  const r = parseResources([CAT.resources[0], { kind: "Nope" }], log);
  assertEquals(r.length, 1);
  assertEquals(r[0]!.kind === "Policy" && r[0]!.timeout, 2000);
  assertEquals(log.lines.length, 1);
});

Deno.test("ControlClient fails over to the next URL and sticks to the one that answered", async () => {
  const calls: string[] = [];
  const fake: typeof fetch = (input) => {
    const url = String(input);
    calls.push(url);
    if (url.startsWith("http://a")) return Promise.reject(new TypeError("connection refused"));
    if (url.startsWith("http://b")) {
      return Promise.resolve(Response.json({ error: { code: "no_leader" } }, { status: 503 }));
    }
    return Promise.resolve(Response.json({ ok: true }));
  };
  const c = new ControlClient({ urls: ["http://a", "http://b/", "http://c"], fetch: fake });
  const r = await c.request("GET", "/v1/health");
  assertEquals(r.status, 200);
  assertEquals(r.url, "http://c");
  assertEquals(calls, ["http://a/v1/health", "http://b/v1/health", "http://c/v1/health"]);
  calls.length = 0;
  await c.request("GET", "/v1/health");
  assertEquals(calls, ["http://c/v1/health"]);
});

Deno.test("ControlClient reports every URL when none answers", async () => {
  const fake: typeof fetch = () => Promise.reject(new TypeError("refused"));
  const c = new ControlClient({ urls: ["http://a", "http://b"], fetch: fake });
  const e = await assertRejects(c.request("GET", "/x"), ControlUnavailableError);
  assertEquals(e.failures.length, 2);
});

Deno.test("Backoff grows to its cap and starts over after reset()", () => {
  const b = new Backoff(100, 1000, () => 0.999);
  const seen = Array.from({ length: 6 }, () => Math.round(b.next()));
  assertEquals(seen, [100, 200, 400, 800, 1000, 1000]);
  b.reset();
  assert(b.next() <= 100);
});

Deno.test("ControlClient starts at startAt and waits a random time before the next URL", async () => {
  const calls: string[] = [];
  const fake: typeof fetch = (input) => {
    calls.push(String(input));
    if (String(input).startsWith("http://b")) return Promise.reject(new TypeError("refused"));
    return Promise.resolve(Response.json({ ok: true }));
  };
  let draws = 0;
  const c = new ControlClient({
    urls: ["http://a", "http://b", "http://c"],
    fetch: fake,
    startAt: 4,
    failoverJitterMs: 5,
    random: () => (draws++, 0.5),
  });
  assertEquals(c.currentUrl, "http://b");
  assertEquals((await c.request("GET", "/x")).url, "http://c");
  assertEquals(calls, ["http://b/x", "http://c/x"]);
  assertEquals(draws, 1);
});
