/**
 * The ingress gateway with real processes and real clients: a control node, a proxy fronting
 * two services, and a gateway proxy enrolled with `skein ctl tokens create --gateway edge`.
 * Outside clients are `curl` (TLS with SNI through `--resolve`) and `node:tls` (to read the
 * certificate served); policies are applied like an operator would.
 * @module
 */
import tls from "node:tls";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { runSkein } from "../skein_cli.ts";
import { sharedSeed } from "../tls_fixture.ts";
import {
  applyResources,
  metricsText,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitEligible,
  waitFor,
} from "./helpers.ts";
import { makeCert } from "./ingress_pki.ts";

/** Runs curl; returns status, headers (lower-case names) and body. */
async function curl(args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "20", "-D", "-", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`curl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  const split = text.indexOf("\r\n\r\n");
  const head = text.slice(0, split);
  return {
    status: Number(head.split(" ")[1]),
    headers: head.toLowerCase(),
    body: text.slice(split + 4),
  };
}

/** The serial and CN of the certificate the server at `addr` serves for `servername`. */
function servedCert(addr: string, servername?: string): Promise<{ serial: string; cn: string }> {
  const i = addr.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: addr.slice(0, i),
      port: Number(addr.slice(i + 1)),
      ...(servername !== undefined ? { servername } : {}),
      rejectUnauthorized: false,
    }, () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve({ serial: normalSerial(String(c.serialNumber)), cn: String(c.subject?.CN) });
    });
    s.on("error", reject);
  });
}

/** A hex serial as both openssl and node:tls can be compared by (no leading zeros). */
function normalSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+/, "");
}

/** `--resolve` pinning `host` at the listener's port to its address. */
function resolveTo(host: string, addr: string): string[] {
  const i = addr.lastIndexOf(":");
  return ["--resolve", `${host}:${addr.slice(i + 1)}:${addr.slice(0, i)}`];
}

function port(addr: string): string {
  return addr.slice(addr.lastIndexOf(":") + 1);
}

/** Writes `text` to `path` by renaming a temporary file over it, as deploy tools do. */
async function replaceFile(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

/** Creates a gateway join token with the real CLI and writes it to `file`. */
async function gatewayToken(cp: { url: string; token: string }, name: string, file: string) {
  const r = await runSkein([
    "ctl",
    "tokens",
    "create",
    "--gateway",
    name,
    "--control",
    cp.url,
    "--token",
    cp.token,
    "--ca-file",
    (await sharedSeed()).certFile,
  ]);
  if (r.code !== 0) throw new Error(`tokens create --gateway failed: ${r.stderr}`);
  await Deno.writeTextFile(file, r.stdout.trim() + "\n");
}

Deno.test("an outside client reaches mesh services through the gateway over TLS, as gateway/edge", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-ingress-" });
  const cp = await startControl(dir);
  const frontend = startApp("frontend");
  const api = startApp("api");
  const proxies: ProxyHandle[] = [];
  try {
    const shop = await makeCert(dir, "shop", ["shop.example.com"]);
    const admin = await makeCert(dir, "admin", ["admin.example.com", "*.admin.example.com"]);
    proxies.push(
      await startProxy(dir, {
        node: "vm-web",
        control: [cp.url],
        workers: 1,
        services: [{ name: "frontend", port: frontend.port }, { name: "api", port: api.port }],
      }),
    );
    await gatewayToken(cp, "edge", `${dir}/gw.token`);
    const gw = await startProxy(dir, {
      node: "gw",
      control: [cp.url],
      token_file: `${dir}/gw.token`,
      gateway: "edge",
      access_log: { path: `${dir}/gw-access.log` },
      ingress: [
        {
          listen: "127.0.0.1:0",
          tls: {
            certificates: [
              { cert_file: shop.cert, key_file: shop.key },
              { cert_file: admin.cert, key_file: admin.key },
            ],
            reload_interval: "200ms",
          },
          routes: [
            { host: "shop.example.com", path_prefix: "/", service: "frontend" },
            { host: "shop.example.com", path_prefix: "/api", service: "api" },
            { host: "*.admin.example.com", service: "api" },
          ],
        },
        { listen: "127.0.0.1:0", redirect_https: 8443 },
      ],
    });
    proxies.push(gw);
    await gw.child.waitLine(/certificate obtained.*spiffe:\/\/[^/ ]+\/gateway\/edge/);
    await gw.child.waitLine(/data plane started.*mtls=true/);
    assertEquals(gw.ingress.length, 2);
    const [tlsAddr, redirectAddr] = gw.ingress as [string, string];
    await waitEligible(gw, "frontend", 1);
    await waitEligible(gw, "api", 1);

    // Host and longest path prefix pick the service; whole segments only.
    const shopUrl = `https://shop.example.com:${port(tlsAddr)}`;
    const pin = ["--cacert", shop.cert, ...resolveTo("shop.example.com", tlsAddr)];
    const root = await curl([...pin, `${shopUrl}/`]);
    assertEquals([root.status, root.body], [200, "frontend"]);
    assertEquals((await curl([...pin, `${shopUrl}/api/orders?x=1`])).body, "api");
    assertEquals((await curl([...pin, `${shopUrl}/apix`])).body, "frontend");
    // SNI picks the second certificate for its names, wildcard included; curl verifies it.
    const wild = await curl([
      "--cacert",
      admin.cert,
      ...resolveTo("ops.admin.example.com", tlsAddr),
      `https://ops.admin.example.com:${port(tlsAddr)}/`,
    ]);
    assertEquals([wild.status, wild.body], [200, "api"]);
    assertEquals(
      (await servedCert(tlsAddr, "admin.example.com")).serial,
      normalSerial(admin.serial),
    );
    assertEquals((await servedCert(tlsAddr, "shop.example.com")).serial, normalSerial(shop.serial));
    // No route for that host: 404 with the cause (admin.example.com itself is no wildcard match).
    const none = await curl([
      "--cacert",
      admin.cert,
      ...resolveTo("admin.example.com", tlsAddr),
      `https://admin.example.com:${port(tlsAddr)}/`,
    ]);
    assertEquals(none.status, 404);
    assertMatch(none.headers, /x-skein-error: no_route/);

    // Behind the listener it is the ordinary outbound path: the access log and the metrics
    // record the call as the gateway's.
    await waitFor(
      "the gateway's access log line",
      async () =>
        (await Deno.readTextFile(`${dir}/gw-access.log`).catch(() => "")).includes(
          '"caller":"gateway/edge","destination":"api"',
        ),
    );
    assertMatch(
      await metricsText(gw),
      /skein_requests_total\{source="gateway\/edge",destination="frontend",route="default",status_class="2xx"\} [1-9]/,
    );

    // The routed service's Route applies as for any caller: here a fault on one path.
    await applyResources(cp.url, [{
      kind: "Route",
      service: "frontend",
      rules: [{
        match: { path_prefix: "/teapot" },
        backends: [{ weight: 100 }],
        fault: { abort: { percent: 100, status: 418 } },
      }, { backends: [{ weight: 100 }] }],
    }]);
    await waitFor(
      "the Route's fault through the gateway",
      async () => (await curl([...pin, `${shopUrl}/teapot`])).status === 418,
    );
    assertMatch((await curl([...pin, `${shopUrl}/teapot`])).headers, /x-skein-error: fault_abort/);
    assertEquals((await curl([...pin, `${shopUrl}/`])).body, "frontend");

    // Authorization names the gateway like any caller: frontend allows it, api does not.
    await applyResources(cp.url, [
      {
        kind: "Authorization",
        service: "frontend",
        default: "deny",
        allow: [{ from: ["gateway/edge"] }],
      },
      { kind: "Authorization", service: "api", default: "deny", allow: [{ from: ["billing"] }] },
    ]);
    await waitFor(
      "api to deny the gateway",
      async () => (await curl([...pin, `${shopUrl}/api/x`])).status === 403,
    );
    const denied = await curl([...pin, `${shopUrl}/api/x`]);
    assertMatch(denied.headers, /x-skein-error: denied/);
    assertEquals((await curl([...pin, `${shopUrl}/`])).body, "frontend");
    const audit = proxies[0]!.child.lines.find((l) => /spiffe:\/\/[^/ ]+\/gateway\/edge/.test(l));
    assert(audit !== undefined, "the callee names the gateway's identity when it denies");

    // A renewed certificate (same key) replaces the file: served without a restart.
    const renewed = await makeCert(dir, "shop-renewed", ["shop.example.com"], shop.key);
    assert(renewed.serial !== shop.serial);
    await replaceFile(shop.cert, await Deno.readTextFile(renewed.cert));
    await waitFor(
      "the renewed certificate to be served",
      async () =>
        (await servedCert(tlsAddr, "shop.example.com")).serial === normalSerial(renewed.serial),
    );
    assertEquals((await curl([...pin, `${shopUrl}/`])).body, "frontend");
    await gw.child.waitLine(/ingress certificate reloaded.*serial=/);

    // A broken replacement is refused with one line; the renewed one stays in service.
    await replaceFile(shop.cert, "-----BEGIN CERTIFICATE-----\nnot a certificate\n");
    await gw.child.waitLine(/ingress certificate not replaced; serving the previous one/);
    assertEquals(
      (await servedCert(tlsAddr, "shop.example.com")).serial,
      normalSerial(renewed.serial),
    );
    // A certificate whose key is not key_file's is refused the same way.
    const stranger = await makeCert(dir, "stranger", ["shop.example.com"]);
    await replaceFile(shop.cert, await Deno.readTextFile(stranger.cert));
    await waitFor(
      "the mismatched key to be refused",
      () => gw.child.lines.filter((l) => /not replaced.*is not the key/.test(l)).length === 1,
    );
    assertEquals(
      (await servedCert(tlsAddr, "shop.example.com")).serial,
      normalSerial(renewed.serial),
    );
    // Each broken version was reported once, not at every poll.
    const notReplaced = gw.child.lines.filter((l) => /ingress certificate not replaced/.test(l));
    assertEquals(notReplaced.length, 2, notReplaced.join("\n"));

    // The plain listener sends clients to HTTPS on the configured port, path and query kept.
    const moved = await curl([
      "-H",
      "Host: shop.example.com",
      `http://${redirectAddr}/cart?item=7`,
    ]);
    assertEquals(moved.status, 308);
    assertMatch(moved.headers, /location: https:\/\/shop\.example\.com:8443\/cart\?item=7/);
    if (Deno.env.get("INGRESS_DEBUG")) {
      console.log(gw.child.lines.filter((l) => /ingress|gateway|listening/.test(l)).join("\n"));
      console.log(proxies[0]!.child.lines.filter((l) => /audit/.test(l)).join("\n"));
    }
  } finally {
    for (const p of proxies.reverse()) await p.child.stop();
    await frontend.close();
    await api.close();
    await cp.child.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
