/**
 * Requests per second of a trivial route: `serveApiHttps` (node:https bridge, TLS 1.3) against
 * `Deno.serve` in plaintext and with TLS, measured with `wrk` (which speaks TLS without a client
 * certificate, i.e. as an operator would).
 *
 * `deno run -A bench/https_server_bench.ts [SECONDS] [CONNECTIONS]`
 * @module
 */
import { createCa, issueCertificate, trustBundlePem } from "../control/ca/mod.ts";
import { serveApiHttps } from "../control/api/https_server.ts";
import { createApi } from "../control/api/app.ts";
import { FakeBackend } from "../tests/control/fake_backend.ts";

const seconds = Number(Deno.args[0] ?? 5);
const conns = Number(Deno.args[1] ?? 32);
const body = JSON.stringify({ node: "cp-1", role: "leader" });
const answer = () => new Response(body, { headers: { "content-type": "application/json" } });

async function wrk(url: string): Promise<string> {
  const out = await new Deno.Command("wrk", {
    args: ["-t", "2", "-c", String(conns), "-d", `${seconds}s`, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? "?";
  const lat = /Latency\s+(\S+)/.exec(text)?.[1] ?? "?";
  const errs = /Socket errors:.*|Non-2xx.*/.exec(text)?.[0] ?? "";
  return `${rps} req/s (avg latency ${lat}) ${errs}`;
}

const now = Date.now();
const ca = await createCa({ trustDomain: "skein.local", now });
const leaf = await issueCertificate(ca, {
  identity: { kind: "control", node: "bench" },
  extraSans: { ip: ["127.0.0.1"] },
  now,
});
const material = { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: trustBundlePem(ca) };

const https = await serveApiHttps({ hostname: "127.0.0.1", port: 0, material, handler: answer });
console.log(
  `serveApiHttps (node:https, TLS 1.3):  ${await wrk(`https://127.0.0.1:${https.port}/`)}`,
);
await https.shutdown(1000);

const app = createApi(new FakeBackend());
const full = await serveApiHttps({
  hostname: "127.0.0.1",
  port: 0,
  material,
  handler: (req, info) => app.fetch(req, info),
});
console.log(
  `serveApiHttps + createApi /v1/health:  ${await wrk(`https://127.0.0.1:${full.port}/v1/health`)}`,
);
await full.shutdown(1000);

const plain = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, answer);
console.log(
  `Deno.serve plaintext:                 ${await wrk(`http://127.0.0.1:${plain.addr.port}/`)}`,
);
await plain.shutdown();

const tls = Deno.serve(
  { hostname: "127.0.0.1", port: 0, cert: leaf.certPem, key: leaf.keyPem, onListen() {} },
  answer,
);
console.log(
  `Deno.serve TLS (no client certs):     ${await wrk(`https://127.0.0.1:${tls.addr.port}/`)}`,
);
await tls.shutdown();
