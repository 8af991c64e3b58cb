/**
 * The HTTPS control API (`serveApiHttps` + `createApi` over the fake backend) against outside
 * clients: curl, openssl s_client, raw sockets. Refused certificates are cut at the handshake
 * (no HTTP status at all); proxies are identified by certificate, operators by token.
 */
import net from "node:net";
import tls from "node:tls";
import { assert, assertEquals } from "../assert.ts";
import { memoryLogger } from "../../common/log.ts";
import { type TlsMaterial } from "../../common/tls/mod.ts";
import {
  type CaState,
  isRevoked,
  issueCertificate,
  revokeIdentity,
  trustBundlePem,
} from "../../control/ca/mod.ts";
import { createOperatorToken } from "../../control/auth/mod.ts";
import {
  createApi,
  createMtlsFetch,
  operatorAuthorizer,
  serveApiHttps,
} from "../../control/api/mod.ts";
import { FakeBackend } from "../control/fake_backend.ts";
import { createKeyAndCsr } from "../../mesh/identity/mod.ts";
import { leaf, plaintextExchange, run, testCa, writePair } from "./_pki.ts";

const POLICY = { kind: "Policy", service: "ledger", timeout: "2s" };

interface Pair {
  cert: string;
  key: string;
}

/** One CA, a control node's server material, client certificates of every kind on disk. */
async function pki(dir: string) {
  const ca = await testCa();
  const other = await testCa();
  const evil = await testCa("evil.test");
  const server = await issueCertificate(ca, {
    identity: { kind: "control", node: "cp-1" },
    extraSans: { ip: ["127.0.0.1"] },
    now: Date.now(),
  });
  const material: TlsMaterial = {
    certPem: server.certPem,
    keyPem: server.keyPem,
    // The foreign trust domain's root is in the bundle so that its leaves verify and the
    // trust-domain check is what refuses them.
    caPem: trustBundlePem(ca) + trustBundlePem(evil),
  };
  await Deno.writeTextFile(`${dir}/ca.pem`, trustBundlePem(ca));
  const past = Date.now() - 3_600_000;
  const pairs = {
    ledger: await writePair(dir, "ledger", await leaf(ca, "ledger")),
    foreign: await writePair(dir, "foreign", await leaf(other, "ledger")),
    expired: await writePair(
      dir,
      "expired",
      await leaf(ca, "ledger", { now: past, ttlMs: 120_000 }),
    ),
    revoked: await writePair(dir, "revoked", await leaf(ca, "mallory")),
    wrongDomain: await writePair(dir, "wrongdomain", await leaf(evil, "ledger")),
  };
  return { ca, material, pairs };
}

/** A leader (fake backend) holding the CA and tokens, served by serveApiHttps. */
async function setup(
  opts: { maxBodyBytes?: number; headersTimeoutMs?: number; maxHandshakes?: number } = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "skein_api_mtls_" });
  const { ca, material, pairs } = await pki(dir);
  const backend = new FakeBackend();
  const revokedCa: CaState = revokeIdentity(ca, "spiffe://skein.local/svc/mallory", {
    now: Date.now(),
    reason: "test",
  });
  backend.applyDirect({
    type: "put_ca",
    ca: revokedCa as unknown as Record<string, unknown>,
    expect_root_id: null,
  });
  const log = memoryLogger();
  const tokens = {
    read: createOperatorToken({ name: "ro", role: "read", now: Date.now() }),
    admin: createOperatorToken({ name: "adm", role: "admin", now: Date.now() }),
  };
  for (const t of Object.values(tokens)) {
    backend.applyDirect({ type: "put_operator_token", record: t.record });
  }
  const app = createApi(backend, {
    logger: log,
    maxBodyBytes: opts.maxBodyBytes,
    authorize: operatorAuthorizer({ tokens: () => backend.state().operatorTokens(), log }),
  });
  const srv = await serveApiHttps({
    hostname: "127.0.0.1",
    port: 0,
    material,
    trustDomain: "skein.local",
    isRevoked: (id) => {
      const st = backend.state().ca();
      return st !== null && isRevoked(st, id);
    },
    headersTimeoutMs: opts.headersTimeoutMs,
    maxConcurrentHandshakes: opts.maxHandshakes,
    handler: (req, info) => app.fetch(req, info),
  });
  const curl = async (
    method: string,
    path: string,
    o: { pair?: Pair; token?: string; body?: string } = {},
  ) => {
    const args = ["-sS", "--max-time", "10", "-X", method, "--cacert", `${dir}/ca.pem`];
    args.push("-o", `${dir}/out`, "-w", "%{http_code}");
    if (o.pair) args.push("--cert", o.pair.cert, "--key", o.pair.key);
    if (o.token) args.push("-H", `Authorization: Bearer ${o.token}`);
    if (o.body !== undefined) {
      await Deno.writeTextFile(`${dir}/body`, o.body);
      args.push("-H", "content-type: application/json", "--data-binary", `@${dir}/body`);
    }
    await Deno.writeTextFile(`${dir}/out`, "");
    const r = await run("curl", [...args, `https://127.0.0.1:${srv.port}${path}`]);
    return { code: r.code, status: r.stdout, body: await Deno.readTextFile(`${dir}/out`) };
  };
  const close = async () => {
    await srv.shutdown(1000);
    await Deno.remove(dir, { recursive: true });
  };
  return { dir, ca, material, pairs, backend, srv, curl, tokens, close, log };
}

Deno.test("certificates that fail verification are cut at the handshake: no HTTP status", async () => {
  const t = await setup();
  try {
    for (const name of ["foreign", "expired", "revoked", "wrongDomain"] as const) {
      const r = await t.curl("GET", "/v1/health", { pair: t.pairs[name] });
      assert(r.code !== 0, `${name}: curl must fail, got exit 0 with ${r.status}`);
      assertEquals(r.status, "000", `${name}: no HTTP status`);
    }
    assertEquals(t.srv.stats.refused.untrusted_certificate, 2); // foreign CA, expired
    assertEquals(t.srv.stats.refused.revoked, 1);
    assertEquals(t.srv.stats.refused.wrong_trust_domain, 1);
    // The same public route answers a client without a certificate and a valid proxy.
    assertEquals((await t.curl("GET", "/v1/health")).status, "200");
    assertEquals((await t.curl("GET", "/v1/health", { pair: t.pairs.ledger })).status, "200");
  } finally {
    await t.close();
  }
});

Deno.test("openssl s_client with an expired certificate gets no HTTP answer", async () => {
  const t = await setup();
  try {
    const args = (p: Pair) => [
      "s_client",
      "-connect",
      `127.0.0.1:${t.srv.port}`,
      "-tls1_3",
      "-CAfile",
      `${t.dir}/ca.pem`,
      "-cert",
      p.cert,
      "-key",
      p.key,
      "-quiet",
    ];
    const req = "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const bad = await run("openssl", args(t.pairs.expired), req);
    assert(!bad.stdout.includes("HTTP/1.1"), `expired cert got an answer: ${bad.stdout}`);
    const good = await run("openssl", args(t.pairs.ledger), req);
    assert(good.stdout.includes("HTTP/1.1 200"), `valid cert: ${good.stdout} ${good.stderr}`);
  } finally {
    await t.close();
  }
});

Deno.test("plaintext HTTP to the API port gets no HTTP answer", async () => {
  const t = await setup();
  try {
    const got = await plaintextExchange(t.srv.port, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert(!got.includes("HTTP/"), `plaintext got: ${JSON.stringify(got.slice(0, 80))}`);
  } finally {
    await t.close();
  }
});

Deno.test("tokens and proxy certificates over HTTPS: 401, 403, own service only", async () => {
  const t = await setup();
  const reg = JSON.stringify({ address: "10.0.0.1", port: 8080 });
  try {
    assertEquals((await t.curl("GET", "/v1/catalog")).status, "401");
    assertEquals((await t.curl("GET", "/v1/catalog", { pair: t.pairs.ledger })).status, "200");
    assertEquals(
      (await t.curl("PUT", "/v1/services/ledger/instances/l-1", {
        pair: t.pairs.ledger,
        body: reg,
      }))
        .status,
      "201",
    );
    const other = await t.curl("PUT", "/v1/services/payments/instances/p-1", {
      pair: t.pairs.ledger,
      body: reg,
    });
    assertEquals(other.status, "403");
    assertEquals(JSON.parse(other.body).error.code, "forbidden");
    const hb = JSON.stringify({ instances: [{ service: "payments", id: "p-1" }] });
    assertEquals(
      (await t.curl("PUT", "/v1/heartbeat", { pair: t.pairs.ledger, body: hb })).status,
      "403",
    );
    assertEquals(
      (await t.curl("PUT", "/v1/resources", {
        token: t.tokens.read.secret,
        body: JSON.stringify(POLICY),
      }))
        .status,
      "403",
    );
    assertEquals(
      (await t.curl("PUT", "/v1/resources", {
        token: t.tokens.admin.secret,
        body: JSON.stringify(POLICY),
      }))
        .status,
      "200",
    );
    // Only the own registration was committed.
    assertEquals(t.backend.state().instance("ledger", "l-1")?.port, 8080);
    assertEquals(t.backend.state().instance("payments", "p-1"), undefined);
  } finally {
    await t.close();
  }
});

Deno.test("POST /v1/ca/sign with a proxy certificate renews that identity; without one it is 401", async () => {
  const t = await setup();
  try {
    // The CSR asks for another service: the certificate's identity is what gets signed.
    const { csrPem } = await createKeyAndCsr({ service: "payments", trustDomain: "skein.local" });
    const body = JSON.stringify({ csr: csrPem });
    const r = await t.curl("POST", "/v1/ca/sign", { pair: t.pairs.ledger, body });
    assertEquals(r.status, "200", r.body);
    const signed = JSON.parse(r.body);
    assertEquals(signed.spiffeId, "spiffe://skein.local/svc/ledger");
    assert(signed.certPem.includes("BEGIN CERTIFICATE"));
    assert(!r.body.includes("PRIVATE KEY"));
    const anon = await t.curl("POST", "/v1/ca/sign", { body });
    assertEquals(anon.status, "401");
    assertEquals(JSON.parse(anon.body).error.code, "join_token_required");
    // Revoked between connection and renewal (no handshake refusal possible): 403.
    t.backend.applyDirect({
      type: "revoke_identity",
      spiffe_id: "spiffe://skein.local/svc/ledger",
      now: Date.now(),
      reason: "test",
    });
    const after = await t.curl("POST", "/v1/ca/sign", { pair: t.pairs.ledger, body });
    assertEquals(after.status, "000", "a revoked proxy is now cut at the handshake");
  } finally {
    await t.close();
  }
});

Deno.test("a body over the limit is 413", async () => {
  const t = await setup({ maxBodyBytes: 1024 });
  try {
    const big = JSON.stringify({ ...POLICY, pad: "x".repeat(4096) });
    const r = await t.curl("PUT", "/v1/resources", { token: t.tokens.admin.secret, body: big });
    assertEquals(r.status, "413");
    assertEquals(JSON.parse(r.body).error.code, "body_too_large");
  } finally {
    await t.close();
  }
});

Deno.test("a client trickling its headers is disconnected without an answer", async () => {
  const t = await setup({ headersTimeoutMs: 300 });
  try {
    const got = await new Promise<string>((resolve) => {
      let out = "";
      const s = tls.connect({
        host: "127.0.0.1",
        port: t.srv.port,
        ca: trustBundlePem(t.ca),
        minVersion: "TLSv1.3",
      }, () => {
        s.write("GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        // One header byte every 100 ms: never finishes before the server's bound.
        const drip = setInterval(() => {
          if (s.destroyed) return clearInterval(drip);
          s.write("a");
        }, 100);
        s.once("close", () => clearInterval(drip));
      });
      s.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
      s.on("error", () => {});
      s.on("close", () => resolve(out));
      setTimeout(() => s.destroy(), 10_000).unref?.();
    });
    assert(!got.includes("HTTP/1.1"), `slowloris got an answer: ${got}`);
    assertEquals(t.srv.stats.refused.headers_timeout, 1);
  } finally {
    await t.close();
  }
});

Deno.test("connections beyond the concurrent handshake limit are refused", async () => {
  const t = await setup({ maxHandshakes: 2 });
  const stalled: net.Socket[] = [];
  try {
    // Two TCP connections that never start their handshake hold both slots.
    for (let i = 0; i < 2; i++) {
      const s = net.connect(t.srv.port, "127.0.0.1");
      s.on("error", () => {});
      await new Promise((r) => s.once("connect", r));
      stalled.push(s);
    }
    while (t.srv.stats.handshakesInFlight < 2) await new Promise((r) => setTimeout(r, 10));
    const refused = await t.curl("GET", "/v1/health");
    assertEquals(refused.status, "000");
    assert(t.srv.stats.refused.handshake_limit >= 1);
    for (const s of stalled) s.destroy();
    while (t.srv.stats.handshakesInFlight > 0) await new Promise((r) => setTimeout(r, 10));
    assertEquals((await t.curl("GET", "/v1/health")).status, "200");
  } finally {
    for (const s of stalled) s.destroy();
    await t.close();
  }
});

Deno.test("a blocking query's signal aborts when its client leaves", async () => {
  const t = await setup();
  try {
    const idx = t.backend.state().index;
    const r = await run("curl", [
      "-sS",
      "--max-time",
      "1",
      "--cacert",
      `${t.dir}/ca.pem`,
      "--cert",
      t.pairs.ledger.cert,
      "--key",
      t.pairs.ledger.key,
      `https://127.0.0.1:${t.srv.port}/v1/catalog?index=${idx}&wait=60s`,
    ]);
    assert(r.code !== 0, "curl gave up on the blocking query");
    // Without the abort the watcher would hold the waiter for 60 s.
    for (let i = 0; i < 1000 && t.backend.watcher.waiting > 0; i++) {
      await new Promise((res) => setTimeout(res, 10));
    }
    assertEquals(t.backend.watcher.waiting, 0);
  } finally {
    await t.close();
  }
});

Deno.test("a follower forwards over HTTPS as itself, and the leader authorizes the original proxy", async () => {
  const t = await setup();
  const cp2 = await issueCertificate(t.ca, {
    identity: { kind: "control", node: "cp-2" },
    now: Date.now(),
  });
  const m2 = { certPem: cp2.certPem, keyPem: cp2.keyPem, caPem: trustBundlePem(t.ca) };
  const client = createMtlsFetch(() => m2);
  const follower = new FakeBackend({
    node: "cp-2",
    leader: false,
    leaderNode: "cp-1",
    leaderApi: `https://127.0.0.1:${t.srv.port}`,
  });
  for (const tok of Object.values(t.tokens)) {
    follower.applyDirect({ type: "put_operator_token", record: tok.record });
  }
  const app = createApi(follower, {
    fetch: (r) => client.fetch(r),
    authorize: operatorAuthorizer({ tokens: () => follower.state().operatorTokens(), log: t.log }),
  });
  const ledger = {
    peer: {
      kind: "service",
      service: "ledger",
      trustDomain: "skein.local",
      uri: "spiffe://skein.local/svc/ledger",
    } as const,
  };
  const reg = { address: "10.0.0.2", port: 81 };
  try {
    const put = (svc: string, env: object, headers: Record<string, string> = {}) =>
      app.request(`/v1/services/${svc}/instances/x-1`, {
        method: "PUT",
        headers,
        body: JSON.stringify(reg),
      }, env);
    const ok = await put("ledger", ledger);
    assertEquals(ok.status, 201, await ok.clone().text());
    assertEquals(ok.headers.get("x-skein-forwarded-to"), `https://127.0.0.1:${t.srv.port}`);
    assertEquals(t.backend.state().instance("ledger", "x-1")?.port, 81);
    // The follower refuses another service itself; a client cannot claim an identity by header
    // to the leader either (its TLS peer is not a control node).
    assertEquals((await put("payments", ledger)).status, 403);
    const claim = await t.curl("PUT", "/v1/services/ledger/instances/x-2", {
      body: JSON.stringify(reg),
    });
    assertEquals(claim.status, "401");
    const forged = await run("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-X",
      "PUT",
      "--cacert",
      `${t.dir}/ca.pem`,
      "--cert",
      t.pairs.ledger.cert,
      "--key",
      t.pairs.ledger.key,
      "-H",
      "x-skein-forwarded-peer: spiffe://skein.local/svc/payments",
      "--data-binary",
      JSON.stringify(reg),
      `https://127.0.0.1:${t.srv.port}/v1/services/payments/instances/x-3`,
    ]);
    assertEquals(forged.stdout, "403");
    // A proxy's read is forwarded too, and the leader admits it as the proxy.
    const read = await app.request("/v1/catalog", {}, ledger);
    assertEquals(read.status, 200);
    assertEquals(read.headers.get("x-skein-forwarded-to"), `https://127.0.0.1:${t.srv.port}`);
  } finally {
    client.close();
    await t.close();
  }
});
