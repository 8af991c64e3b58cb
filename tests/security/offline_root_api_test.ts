/**
 * The API of an offline-root CA: `POST /v1/ca/rotate` with an intermediate installs it only
 * after checking it against the trusted root (another root's, an expired one, half a pair and
 * a root rotation are refused and change nothing), `GET /v1/ca/roots` shows the intermediate,
 * and `export-seed` hands out the root certificate and the intermediate pair, never a root key.
 */
import assert from "node:assert/strict";
import { memoryLogger } from "../../common/log.ts";
import {
  caDigest,
  createOfflineRootCa,
  loadOrCreateSeedCa,
  signIntermediate,
} from "../../control/ca/mod.ts";
import { createOperatorToken } from "../../control/auth/mod.ts";
import { createApi } from "../../control/api/app.ts";
import { FakeBackend } from "../control/fake_backend.ts";
import { operatorAuthorizer } from "../../control/api/operator_auth.ts";
import { writeExportedSeed } from "../../cmd/ctl/ca_format.ts";

Deno.test("an offline-root CA: the intermediate is replaced only by one its root signed, and export-seed holds no root key", async () => {
  const now = Date.now();
  const backend = new FakeBackend();
  const made = await createOfflineRootCa({ trustDomain: "skein.local", now });
  const other = await createOfflineRootCa({ trustDomain: "skein.local", now });
  backend.applyDirect({
    type: "put_ca",
    ca: made.state as unknown as Record<string, unknown>,
    expect_root_id: null,
  });
  const admin = createOperatorToken({ name: "adm", role: "admin", now });
  backend.applyDirect({ type: "put_operator_token", record: admin.record });
  const log = memoryLogger();
  const app = createApi(backend, {
    logger: log,
    authorize: operatorAuthorizer({ tokens: () => backend.state().operatorTokens(), log }),
  });
  const post = async (path: string, body: unknown) => {
    const r = await app.request(path, {
      method: "POST",
      headers: { authorization: `Bearer ${admin.secret}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: r.status, json: await r.json() };
  };
  const digest0 = caDigest(backend.state().ca());
  const expired = await signIntermediate({
    rootCertPem: made.root.certPem,
    rootKeyPem: made.root.keyPem,
    now: now - 3 * 86_400_000,
    validityMs: 86_400_000,
  });
  const refusals: [unknown, number, RegExp][] = [
    [
      {
        intermediate_cert_pem: other.intermediate.certPem,
        intermediate_key_pem: other.intermediate.keyPem,
      },
      400,
      /not signed by the configured root/,
    ],
    [
      {
        intermediate_cert_pem: expired.certPem,
        intermediate_key_pem: expired.keyPem,
      },
      400,
      /intermediate expired at/,
    ],
    [{ intermediate_cert_pem: made.intermediate.certPem }, 400, /needs both/],
    [{}, 409, /root key is offline/],
  ];
  for (const [body, status, re] of refusals) {
    const r = await post("/v1/ca/rotate", body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    assert.match(r.json.error.message, re);
    assert.equal(caDigest(backend.state().ca()), digest0, "nothing committed");
  }
  const next = await signIntermediate({
    rootCertPem: made.root.certPem,
    rootKeyPem: made.root.keyPem,
    now,
  });
  const ok = await post("/v1/ca/rotate", {
    intermediate_cert_pem: next.certPem,
    intermediate_key_pem: next.keyPem,
  });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.ok(!JSON.stringify(ok.json).includes("PRIVATE KEY"));
  const roots = await (await app.request("/v1/ca/roots")).json();
  assert.deepEqual(roots.roots, [made.root.certPem]);
  assert.equal(roots.intermediate.cert_pem, next.certPem);

  const res = await post("/v1/ca/export-seed", {});
  assert.equal(res.status, 200);
  assert.equal(res.json.key_pem, null);
  assert.ok(!JSON.stringify(res.json).includes(made.root.keyPem.split("\n")[1]!));
  const dir = await Deno.makeTempDir();
  try {
    const w = await writeExportedSeed(res.json, `${dir}/seed`);
    assert.equal(w.offline, true);
    assert.deepEqual([...Deno.readDirSync(`${dir}/seed`)].map((e) => e.name).sort(), [
      "ca.pem",
      "intermediate.key",
      "intermediate.pem",
    ]);
    const loaded = await loadOrCreateSeedCa({
      certFile: `${dir}/seed/ca.pem`,
      keyFile: `${dir}/seed/ca.key`,
      intermediateCertFile: `${dir}/seed/intermediate.pem`,
      intermediateKeyFile: `${dir}/seed/intermediate.key`,
      trustDomain: "skein.local",
      create: false,
      now,
    });
    assert.equal(loaded.roots[0]!.intermediate!.certPem, next.certPem);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
