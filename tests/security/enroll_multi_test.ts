/**
 * `obtainIdentities` (one identity per local service) against the real control API app (in
 * process, fake Raft backend): several tokens in one file, stored identities reused, refused
 * tokens skipped and reported, missing services named.
 * @module
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { createApi } from "../../control/api/mod.ts";
import { FakeBackend } from "../control/fake_backend.ts";
import { createCa } from "../../control/ca/mod.ts";
import { memoryLogger } from "../../common/log.ts";
import { loadIdentity, obtainIdentities, readTokens } from "../../mesh/identity/mod.ts";

async function setup() {
  const backend = new FakeBackend();
  const app = createApi(backend);
  const ca = await createCa({ trustDomain: "example.org", now: Date.now() });
  backend.applyDirect({ type: "put_ca", ca: { ...ca }, expect_root_id: null });
  const dir = await Deno.makeTempDir({ prefix: "skein-enroll-multi-" });
  const signs: string[] = [];
  const fetch = (req: Request) => {
    if (new URL(req.url).pathname === "/v1/ca/sign") signs.push(req.url);
    return Promise.resolve(app.fetch(req));
  };
  const mint = async (service: string) => {
    const res = await app.request("/v1/tokens", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service, ttl: "1h" }),
    });
    return (await res.json()).token as string;
  };
  return { dir, fetch, signs, mint };
}

Deno.test("readTokens() reads one token per line and ignores blank lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/t`, "\n  skn_join_a  \n\nskn_join_b\n");
    assertEquals(await readTokens(`${dir}/t`), ["skn_join_a", "skn_join_b"]);
    assertEquals(await readTokens(`${dir}/absent`), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("obtainIdentities redeems one token per service, stores each, and reuses them", async () => {
  const { dir, fetch, signs, mint } = await setup();
  try {
    // File order differs from the config order: the CA decides each token's service.
    const tBeta = await mint("beta");
    const tAlpha = await mint("alpha");
    await Deno.writeTextFile(`${dir}/t`, `${tBeta}\n\n${tAlpha}\n`);
    const log = memoryLogger();
    const opts = {
      dataDir: `${dir}/data`,
      tokenFile: `${dir}/t`,
      controlUrls: ["http://cp-1.invalid"],
      services: ["alpha", "beta", "alpha"],
      logger: log,
      fetch,
    };
    const r = await obtainIdentities(opts);
    assertEquals(r.missing, []);
    assertEquals(r.identities.map((i) => [i.service, i.kind]), [["alpha", "issued"], [
      "beta",
      "issued",
    ]]);
    assertEquals(r.identities[1]!.cert.spiffeId?.uri, "spiffe://example.org/svc/beta");
    // The first service stays in data_dir itself; the others go below identities/.
    assertEquals(r.identities[0]!.dir, `${dir}/data`);
    assertEquals(r.identities[1]!.dir, `${dir}/data/identities/beta`);
    assertEquals(
      (await loadIdentity(`${dir}/data/identities/beta`))?.certPem,
      r.identities[1]!.material.certPem,
    );
    assertEquals((await Deno.stat(`${dir}/data/identities/beta`)).mode! & 0o777, 0o700);
    const text = log.lines.join("\n");
    assert(!text.includes(tAlpha) && !text.includes(tBeta), "tokens are never logged");

    // A restart loads both, with no request (the single-use tokens are spent anyway).
    const before = signs.length;
    const again = await obtainIdentities(opts);
    assertEquals(again.identities.map((i) => [i.service, i.kind]), [["alpha", "stored"], [
      "beta",
      "stored",
    ]]);
    assertEquals(signs.length, before);

    // beta's identity lost: only beta needs a token; the spent ones are refused and reported.
    await Deno.remove(`${dir}/data/identities/beta`, { recursive: true });
    const tBeta2 = await mint("beta");
    await Deno.writeTextFile(`${dir}/t`, `${tBeta}\n${tAlpha}\n${tBeta2}\n`);
    const third = await obtainIdentities(opts);
    assertEquals(third.missing, []);
    assertEquals(third.identities.map((i) => [i.service, i.kind]), [["alpha", "stored"], [
      "beta",
      "issued",
    ]]);
    assertEquals(third.reasons.length, 2);
    assertMatch(third.reasons[0]!, /token 1 of .*: .*403 join_token_used_up/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("obtainIdentities names the services no token covered", async () => {
  const { dir, fetch, mint } = await setup();
  try {
    const tGamma = await mint("gamma");
    const tAlpha = await mint("alpha");
    await Deno.writeTextFile(`${dir}/t`, `${tGamma}\n${tAlpha}\n`);
    const log = memoryLogger();
    const r = await obtainIdentities({
      dataDir: `${dir}/data`,
      tokenFile: `${dir}/t`,
      controlUrls: ["http://cp-1.invalid"],
      services: ["alpha", "beta"],
      logger: log,
      fetch,
    });
    assertEquals(r.identities.map((i) => i.service), ["alpha"]);
    assertEquals(r.missing, ["beta"]);
    // The gamma certificate is not kept anywhere.
    assertMatch(log.lines.join("\n"), /service this proxy needs no identity for.*svc\/gamma/);
    assertEquals(await loadIdentity(`${dir}/data/identities/gamma`), null);

    const none = await obtainIdentities({
      dataDir: `${dir}/other`,
      tokenFile: `${dir}/absent`,
      controlUrls: ["http://cp-1.invalid"],
      services: ["alpha"],
      logger: log,
      fetch,
    });
    assertEquals(none.identities, []);
    assertEquals(none.missing, ["alpha"]);
    assertMatch(none.reasons.join(";"), /no token file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
