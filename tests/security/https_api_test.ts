/**
 * The control API's shape: node:https with serverTlsOptions(requireClientCert: false) lets
 * operators in with bearer tokens and identifies proxies by their certificate.
 */
import https from "node:https";
import type net from "node:net";
import type tls from "node:tls";
import { assertEquals } from "../assert.ts";
import { trustBundlePem } from "../../control/ca/mod.ts";
import {
  authenticate,
  authorizeRoute,
  createOperatorToken,
  type Principal,
  requiredRole,
} from "../../control/auth/mod.ts";
import { peerSpiffeId, serverTlsOptions } from "../../common/tls/mod.ts";
import { leaf, run, testCa, writePair } from "./_pki.ts";

Deno.test("node:https API: bearer tokens for operators, certificates for proxies", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein_api_" });
  const ca = await testCa();
  const other = await testCa();
  const server = await leaf(ca, "x", {
    identity: { kind: "control", node: "cp-1" },
    extraSans: { ip: ["127.0.0.1"] },
  });
  const op = createOperatorToken({ name: "ci", role: "operator", now: Date.now() });
  const reader = createOperatorToken({ name: "ro", role: "read", now: Date.now() });
  const tokens = [op.record, reader.record];
  const srv = https.createServer(
    serverTlsOptions(
      { certPem: server.certPem, keyPem: server.keyPem, caPem: trustBundlePem(ca) },
      {
        requireClientCert: false,
      },
    ),
    (req, res) => {
      const id = peerSpiffeId(req.socket as tls.TLSSocket);
      let who: Principal = { kind: "anonymous" };
      if (id?.kind === "service") who = { kind: "proxy", service: id.service, spiffeId: id.uri };
      else {
        const a = authenticate(tokens, req.headers.authorization, Date.now());
        if (a.ok) who = { kind: "operator", role: a.record.role, tokenId: a.record.id };
      }
      const d = authorizeRoute(requiredRole(req.method ?? "GET", req.url ?? "/"), who);
      res.writeHead(d.allowed ? 200 : d.status);
      res.end(who.kind);
    },
  );
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await Deno.writeTextFile(`${dir}/ca.pem`, trustBundlePem(ca));
  const proxy = await writePair(dir, "proxy", await leaf(ca, "ledger"));
  const foreign = await writePair(dir, "foreign", await leaf(other, "ledger"));
  const curl = async (method: string, path: string, extra: string[]) => {
    const r = await run("curl", [
      "-sS",
      "--max-time",
      "10",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-X",
      method,
      "--cacert",
      `${dir}/ca.pem`,
      ...extra,
      `https://127.0.0.1:${port}${path}`,
    ]);
    return r.stdout;
  };
  try {
    const bearer = (s: string) => ["-H", `Authorization: Bearer ${s}`];
    const cert = (p: { cert: string; key: string }) => ["--cert", p.cert, "--key", p.key];
    const cases: [string, string, string[], string][] = [
      ["GET", "/v1/health", [], "200"],
      ["GET", "/v1/services", [], "401"],
      ["GET", "/v1/services", bearer(reader.secret), "200"],
      ["PUT", "/v1/resources", bearer(reader.secret), "403"],
      ["PUT", "/v1/resources", bearer(op.secret), "200"],
      ["PUT", "/v1/resources", bearer("skn_op_forged"), "401"],
      ["GET", "/v1/catalog", cert(proxy), "200"],
      ["PUT", "/v1/services/ledger/instances/i1", cert(proxy), "200"],
      ["PUT", "/v1/services/payments/instances/i1", cert(proxy), "403"],
      // A certificate from another CA is not an identity: the token check decides.
      ["GET", "/v1/catalog", cert(foreign), "401"],
    ];
    for (const [m, p, extra, want] of cases) {
      assertEquals(await curl(m, p, extra), want, `${m} ${p} ${extra.join(" ").slice(0, 40)}`);
    }
  } finally {
    srv.closeAllConnections?.();
    await new Promise<void>((r) => srv.close(() => r()));
    await Deno.remove(dir, { recursive: true });
  }
});
