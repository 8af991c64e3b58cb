/**
 * `obtainIdentity` against the real control API app (in process, fake Raft backend): retry
 * while the cluster has no CA, refusal of a bad token, and what is (not) written to disk.
 * @module
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { createApi } from "../../control/api/mod.ts";
import { FakeBackend } from "../control/fake_backend.ts";
import { createCa } from "../../control/ca/mod.ts";
import { memoryLogger } from "../../common/log.ts";
import { EnrollError, loadIdentity, obtainIdentity } from "../../mesh/identity/mod.ts";

async function setup() {
  const backend = new FakeBackend();
  const app = createApi(backend);
  const dir = await Deno.makeTempDir({ prefix: "skein-enroll-unit-" });
  const paths: string[] = [];
  const fetch = (req: Request) => {
    paths.push(new URL(req.url).pathname);
    return Promise.resolve(app.fetch(req));
  };
  return { backend, app, dir, fetch, paths };
}

async function mintToken(app: ReturnType<typeof createApi>, service: string): Promise<string> {
  const res = await app.request("/v1/tokens", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ service, ttl: "1h" }),
  });
  return (await res.json()).token;
}

Deno.test("obtainIdentity retries while the cluster has no CA, then stores the token's identity", async () => {
  const { backend, app, dir, fetch, paths } = await setup();
  try {
    const token = await mintToken(app, "payments");
    await Deno.writeTextFile(`${dir}/t`, `${token}\n`);
    const log = memoryLogger();
    const ca = await createCa({ trustDomain: "example.org", now: Date.now() });
    const got = obtainIdentity({
      dataDir: `${dir}/data`,
      tokenFile: `${dir}/t`,
      controlUrls: ["http://cp-1.invalid", "http://cp-2.invalid"],
      service: "asks-for-something-else",
      logger: log,
      fetch: async (req) => {
        // The CA appears after both nodes answered 503 once.
        if (paths.length === 2) {
          backend.applyDirect({ type: "put_ca", ca: { ...ca }, expect_root_id: null });
        }
        return await fetch(req);
      },
    });
    const r = await got;
    assert(r.kind === "issued");
    assertEquals(r.cert.spiffeId?.uri, "spiffe://example.org/svc/payments");
    assertEquals(paths.slice(0, 2), ["/v1/ca/roots", "/v1/ca/roots"]);
    const stored = await loadIdentity(`${dir}/data`);
    assertEquals(stored?.certPem, r.material.certPem);
    assert(!log.lines.join("\n").includes(token), "the token is never logged");

    // Next start: the stored identity, with no request at all.
    const before = paths.length;
    const again = await obtainIdentity({
      dataDir: `${dir}/data`,
      tokenFile: `${dir}/t`,
      controlUrls: ["http://cp-1.invalid"],
      service: "payments",
      logger: log,
      fetch,
    });
    assertEquals(again.kind, "stored");
    assertEquals(paths.length, before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("obtainIdentity: a refused token is an EnrollError naming the reason, and nothing is saved", async () => {
  const { backend, dir, fetch } = await setup();
  try {
    const ca = await createCa({ trustDomain: "skein.local", now: Date.now() });
    backend.applyDirect({ type: "put_ca", ca: { ...ca }, expect_root_id: null });
    await Deno.writeTextFile(`${dir}/t`, "skn_join_not-a-real-token");
    const opts = {
      dataDir: `${dir}/data`,
      tokenFile: `${dir}/t`,
      controlUrls: ["http://cp-1.invalid"],
      service: "payments",
      logger: memoryLogger(),
      fetch,
    };
    let err: unknown = null;
    try {
      await obtainIdentity(opts);
    } catch (e) {
      err = e;
    }
    assert(err instanceof EnrollError, String(err));
    assertMatch(err.message, /401 join_token_unknown/);
    assertEquals(await loadIdentity(`${dir}/data`), null);

    await Deno.writeTextFile(`${dir}/t`, "  \n");
    err = null;
    try {
      await obtainIdentity(opts);
    } catch (e) {
      err = e;
    }
    assert(err instanceof EnrollError && /is empty/.test(err.message), String(err));

    const none = await obtainIdentity({ ...opts, tokenFile: `${dir}/absent` });
    assertEquals(none.kind, "none");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
