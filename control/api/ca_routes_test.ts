import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import * as x509 from "../ca/_x509.ts";
import { createCa, MAX_CSR_PEM_BYTES } from "../ca/mod.ts";
import { EC_ALGORITHM, generateEcKeyPair } from "../../common/tls/mod.ts";
import { createApi, MAX_SIGN_BODY_BYTES } from "./app.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";

const T0 = Date.UTC(2026, 0, 1);

/** A CSR that asks for `asks` (which the CA must ignore). */
async function csr(asks = "spiffe://skein.local/svc/admin"): Promise<string> {
  const keys = await generateEcKeyPair();
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=whatever",
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: asks }])],
  });
  return req.toString("pem");
}

async function setup(opts: { withCa?: boolean } = {}) {
  const backend = new FakeBackend();
  let now = T0;
  const app = createApi(backend, { now: () => now });
  if (opts.withCa !== false) {
    const ca = await createCa({ trustDomain: "skein.local", now: T0 });
    const r = backend.applyDirect({ type: "put_ca", ca: { ...ca }, expect_root_id: null });
    assert.ok(r.ok);
  }
  const post = (path: string, body: unknown) =>
    app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  return {
    backend,
    app,
    post,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

Deno.test("POST /v1/tokens returns the secret once; GET /v1/tokens lists records without hash or secret", async () => {
  const { app, post, backend } = await setup();
  const res = await post("/v1/tokens", { service: "payments", ttl: "1h", uses: 2 });
  assert.equal(res.status, 201);
  const body = await res.json();
  assert.match(body.token, /^skn_join_/);
  assert.equal(body.service, "payments");
  assert.equal(body.uses, 2);
  assert.equal(body.expires_at, new Date(T0 + 3_600_000).toISOString());
  assert.equal(backend.state().joinTokens().length, 1);
  const list = await (await app.request("/v1/tokens")).text();
  assert.ok(!list.includes(body.token));
  assert.ok(!list.includes(backend.state().joinTokens()[0]!.hash));
  assert.equal(JSON.parse(list).tokens[0].usesLeft, 2);

  assert.equal((await post("/v1/tokens", { service: "payments", ttl: "soon" })).status, 400);
  assert.equal((await post("/v1/tokens", { service: "payments", ttl: "30d" })).status, 400);
  assert.equal((await post("/v1/tokens", { service: "bad name!" })).status, 400);
});

Deno.test("POST /v1/ca/sign signs the token's service, whatever the CSR asks, and spends the token", async () => {
  const { post, backend } = await setup();
  const { token } = await (await post("/v1/tokens", { service: "payments", ttl: "1h" })).json();
  const res = await post("/v1/ca/sign", { csr: await csr(), token });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.spiffeId, "spiffe://skein.local/svc/payments");
  const cert = new X509Certificate(body.certPem);
  assert.equal(
    cert.subjectAltName,
    "URI:spiffe://skein.local/svc/payments, DNS:payments.svc.skein.local",
  );
  const root = new X509Certificate(backend.state().ca()!.roots[0]!.certPem);
  assert.ok(cert.verify(root.publicKey), "the leaf is signed by the cluster root");
  assert.equal(body.caPem, backend.state().ca()!.roots[0]!.certPem);
  assert.ok(!JSON.stringify(body).includes("PRIVATE KEY"));

  const again = await post("/v1/ca/sign", { csr: await csr(), token });
  assert.equal(again.status, 403);
  assert.equal((await again.json()).error.code, "join_token_used_up");
});

Deno.test("POST /v1/ca/sign refuses unknown and expired tokens, and a bad CSR does not spend the token", async () => {
  const { post, advance, backend } = await setup();
  const unknown = await post("/v1/ca/sign", { csr: await csr(), token: "skn_join_nope" });
  assert.equal(unknown.status, 401);
  assert.equal((await unknown.json()).error.code, "join_token_unknown");
  const missing = await post("/v1/ca/sign", { csr: await csr() });
  assert.equal(missing.status, 401);

  const { token } = await (await post("/v1/tokens", { service: "payments", ttl: "1m" })).json();
  const bad = await post("/v1/ca/sign", {
    csr: "-----BEGIN CERTIFICATE REQUEST-----\nAA==\n",
    token,
  });
  assert.equal(bad.status, 400);
  assert.equal(backend.state().joinTokens()[0]!.usesLeft, 1, "a refused CSR keeps the use");

  advance(60_000);
  const expired = await post("/v1/ca/sign", { csr: await csr(), token });
  assert.equal(expired.status, 403);
  assert.equal((await expired.json()).error.code, "join_token_expired");
});

Deno.test("POST /v1/ca/sign reads no more than a CSR needs before any credential is checked", async () => {
  const { post, backend } = await setup();
  const { token } = await (await post("/v1/tokens", { service: "payments", ttl: "1m" })).json();
  // The largest real body fits: a CSR at its limit and a token.
  const big = await post("/v1/ca/sign", { csr: "x".repeat(MAX_CSR_PEM_BYTES), token });
  assert.equal(big.status, 400, "too large a body would have been 413");
  const over = await post("/v1/ca/sign", { csr: "x".repeat(MAX_SIGN_BODY_BYTES), token });
  assert.equal(over.status, 413);
  assert.equal((await over.json()).error.code, "body_too_large");
  assert.equal(backend.state().joinTokens()[0]!.usesLeft, 1, "nothing was spent");
});

Deno.test("a revoked service cannot obtain a certificate; revoke needs exactly one target", async () => {
  const { post } = await setup();
  assert.equal((await post("/v1/ca/revoke", {})).status, 400);
  const rv = await post("/v1/ca/revoke", { service: "payments", reason: "stolen" });
  assert.equal(rv.status, 200);
  const { index: _i, ...rest } = await rv.json();
  assert.deepEqual(rest, {
    spiffe_id: "spiffe://skein.local/svc/payments",
    changed: true,
  });
  const { token } = await (await post("/v1/tokens", { service: "payments", ttl: "1h" })).json();
  const res = await post("/v1/ca/sign", { csr: await csr(), token });
  assert.equal(res.status, 403);
  assert.equal((await res.json()).error.code, "revoked");
});

Deno.test("GET /v1/ca/roots serves the bundle; 503 before the CA exists; sign needs a CA too", async () => {
  const empty = await setup({ withCa: false });
  assert.equal((await empty.app.request("/v1/ca/roots")).status, 503);
  const { token } = await (await empty.post("/v1/tokens", { service: "p", ttl: "1h" })).json();
  assert.equal((await empty.post("/v1/ca/sign", { csr: await csr(), token })).status, 503);

  const { app, backend } = await setup();
  const res = await app.request("/v1/ca/roots");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.trust_domain, "skein.local");
  assert.deepEqual(body.roots, [backend.state().ca()!.roots[0]!.certPem]);
});

Deno.test("no read route returns the CA private key", async () => {
  const { app, post } = await setup();
  await post("/v1/tokens", { service: "payments", ttl: "1h" });
  await app.request("/v1/resources", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "RateLimit", service: "x", requests_per_second: 1, burst: 1 }),
  });
  for (
    const path of [
      "/v1/ca/roots",
      "/v1/catalog",
      "/v1/resources",
      "/v1/services",
      "/v1/tokens",
      "/v1/health",
      "/metrics",
      "/v1/ca/state",
    ]
  ) {
    const text = await (await app.request(path)).text();
    assert.ok(!text.includes("PRIVATE KEY"), `${path} leaks a private key`);
  }
});
