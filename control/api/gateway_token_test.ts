import assert from "node:assert/strict";
import * as x509 from "../ca/_x509.ts";
import { createCa } from "../ca/mod.ts";
import { EC_ALGORITHM, generateEcKeyPair } from "../../common/tls/mod.ts";
import { principalFromPeer } from "../auth/mod.ts";
import { parseSpiffeId } from "../../common/tls/mod.ts";
import { createApi } from "./app.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";

const T0 = Date.UTC(2026, 0, 1);

async function setup() {
  const backend = new FakeBackend();
  const app = createApi(backend, { now: () => T0 });
  const ca = await createCa({ trustDomain: "skein.local", now: T0 });
  assert.ok(backend.applyDirect({ type: "put_ca", ca: { ...ca }, expect_root_id: null }).ok);
  const post = (path: string, body: unknown) =>
    app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  return { app, post };
}

async function csr(): Promise<string> {
  const keys = await generateEcKeyPair();
  const req = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=whatever",
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{
        type: "url",
        value: "spiffe://skein.local/svc/payments",
      }]),
    ],
  });
  return req.toString("pem");
}

Deno.test("a --gateway join token obtains spiffe://<td>/gateway/<name>, whatever the CSR asks", async () => {
  const { app, post } = await setup();
  const res = await post("/v1/tokens", { gateway: "edge", ttl: "1h" });
  assert.equal(res.status, 201);
  const made = await res.json();
  assert.equal(made.gateway, "edge");
  assert.equal(made.service, undefined);
  const list = await (await app.request("/v1/tokens")).json();
  assert.equal(list.tokens[0].kind, "gateway");
  const signed = await post("/v1/ca/sign", { csr: await csr(), token: made.token });
  assert.equal(signed.status, 200);
  assert.equal((await signed.json()).spiffeId, "spiffe://skein.local/gateway/edge");
});

Deno.test("POST /v1/tokens takes exactly one of service and gateway", async () => {
  const { post } = await setup();
  assert.equal((await post("/v1/tokens", { service: "a", gateway: "b" })).status, 400);
  assert.equal((await post("/v1/tokens", { ttl: "1h" })).status, 400);
  assert.equal((await post("/v1/tokens", { gateway: "bad name!" })).status, 400);
});

Deno.test("a gateway certificate is a proxy principal that acts for no service", () => {
  const p = principalFromPeer(parseSpiffeId("spiffe://skein.local/gateway/edge"));
  assert.deepEqual(p, {
    kind: "proxy",
    service: "gateway/edge",
    spiffeId: "spiffe://skein.local/gateway/edge",
  });
});
