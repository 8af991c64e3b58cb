/**
 * Mutual TLS on the proxy-to-proxy hop with real processes: a control node, two proxies that
 * enrol with join tokens, and an app. Traffic through the caller's upstream listener works;
 * the callee's inbound port admits nothing without a mesh certificate (openssl without a
 * certificate or with another CA's, curl in plaintext); the callee sees the caller's identity.
 * @module
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals } from "../assert.ts";
import { createJoinToken } from "../skein_cli.ts";
import {
  adminJson,
  type App,
  get,
  metricsText,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "../proxy_process/helpers.ts";
import { leaf, run, testCa, writePair } from "./_pki.ts";

Deno.test("proxies with identities speak mTLS to each other and the inbound admits only mesh certificates", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-pmtls-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("ledger"), startApp("billing")];
  const proxies: ProxyHandle[] = [];
  try {
    for (const s of ["ledger", "billing"]) {
      await Deno.writeTextFile(`${dir}/${s}.token`, await createJoinToken(cp.url, cp.token, s));
    }
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      token_file: `${dir}/ledger.token`,
      workers: 1,
      services: [{ name: "ledger", port: apps[0]!.port }],
    });
    proxies.push(callee);
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      token_file: `${dir}/billing.token`,
      workers: 1,
      services: [{ name: "billing", port: apps[1]!.port }],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
    });
    proxies.push(caller);
    await callee.child.waitLine(/data plane started.*mtls=true/);
    await caller.child.waitLine(/data plane started.*mtls=true/);
    await waitFor("the ledger endpoint in the caller", async () => {
      const e = await adminJson(caller, "/endpoints") as {
        outbound: { service: string; eligible: number }[];
      };
      return e.outbound.find((d) => d.service === "ledger")?.eligible === 1;
    });

    // --- end to end through the upstream listener, over mTLS, several times (keep-alive pool).
    for (let i = 0; i < 5; i++) {
      const r = await get(caller.upstreams.ledger!, "/");
      assertEquals(r.status, 200, r.body);
      assertEquals(r.body, "ledger");
    }
    assertEquals(apps[0]!.hits, 5);

    // --- the callee saw the caller's SPIFFE id: it is the `source` of its inbound requests.
    await waitFor("5 inbound requests with source=billing on the callee", async () => {
      const fam = parsePrometheusText(await metricsText(callee)).get("skein_requests_total");
      const n = (fam?.samples ?? []).filter((s) =>
        s.labels.destination === "ledger" && s.labels.source === "billing"
      ).reduce((a, s) => a + s.value, 0);
      return n === 5;
    }, 5_000);

    // --- outside clients get nothing past the handshake on the inbound port.
    const [host, port] = [
      callee.inbound.slice(0, callee.inbound.lastIndexOf(":")),
      callee.inbound.slice(callee.inbound.lastIndexOf(":") + 1),
    ];
    const other = await testCa();
    const foreign = await writePair(dir, "foreign", await leaf(other, "billing"));
    const req = "GET / HTTP/1.1\r\nhost: ledger\r\nconnection: close\r\n\r\n";
    for (
      const [name, extra] of [
        ["no certificate", []],
        ["another CA's certificate", ["-cert", foreign.cert, "-key", foreign.key]],
      ] as const
    ) {
      const r = await run("openssl", [
        "s_client",
        "-connect",
        `${host}:${port}`,
        "-quiet",
        ...extra,
      ], req);
      assert(!/HTTP\/1\.[01] \d{3}/.test(r.stdout), `openssl with ${name}: ${r.stdout}`);
    }
    const plain = await run("curl", ["-sS", "--max-time", "5", `http://${callee.inbound}/`]);
    assert(plain.code !== 0, `plaintext curl must fail, got ${plain.code}: ${plain.stdout}`);
    assert(!plain.stdout.includes("ledger"), plain.stdout);
    assertEquals(apps[0]!.hits, 5, "no outside client reached the app");

    // --- and the mesh still works afterwards.
    const again = await get(caller.upstreams.ledger!, "/");
    assertEquals(again.status, 200, again.body);
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
