/**
 * Mutual TLS on the proxy-to-proxy hop with real processes: a control node, two proxies that
 * enrol with join tokens, and an app. Traffic through the caller's upstream listener works;
 * the callee's inbound port admits nothing without a mesh certificate (openssl without a
 * certificate or with another CA's, curl in plaintext); the callee sees the caller's identity.
 * @module
 */
import { parsePrometheusText } from "../../common/metrics.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import {
  adminJson,
  type App,
  get,
  ledgerAndBilling,
  metricsText,
  type ProxyHandle,
  startApp,
  startControl,
  waitFor,
} from "../proxy_process/helpers.ts";
import type tls from "node:tls";
import { type CaState, trustBundlePem } from "../../control/ca/mod.ts";
import { mtlsConnect, MtlsConnectError, type TlsMaterial } from "../../common/tls/mod.ts";
import { nullLogger } from "../../common/log.ts";
import { ProxyConfig } from "../../config/mod.ts";
import { type Endpoint, NativeTlsConn } from "../../mesh/forward/mod.ts";
import { WorkerDataPlanes } from "../../mesh/proxy/mod.ts";
import { connectMtls, listenMtls, MeshTlsState } from "../../mesh/tls/mod.ts";
import { leaf, run, testCa, whoamiServer, writePair } from "./_pki.ts";

Deno.test("proxies with identities speak mTLS to each other and the inbound admits only mesh certificates", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-pmtls-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("ledger"), startApp("billing")];
  const proxies: ProxyHandle[] = [];
  try {
    const { callee, caller } = await ledgerAndBilling(
      dir,
      cp,
      { ledger: apps[0]!.port, billing: apps[1]!.port },
      proxies,
    );
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

// ---------------------------------------------------------------------------------------------
// mTLS data planes on worker threads, in-process (real worker threads, real TLS): every worker
// terminates mTLS on the shared port, and TLS updates reach every worker.

const TD = "skein.local";

/** One keep-alive HTTP/1.1 GET over an mTLS socket; resolves with the status and body. */
function _tlsGet(socket: tls.TLSSocket): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (d: Uint8Array) => {
      text += new TextDecoder().decode(d);
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) return;
      const len = Number(/content-length:\s*(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (text.length < end + 4 + len) return;
      cleanup();
      resolve({ status: Number(text.slice(9, 12)), body: text.slice(end + 4, end + 4 + len) });
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`connection ended before a response: ${JSON.stringify(text)}`));
    };
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("close", onEnd);
      socket.off("error", onEnd);
    };
    socket.on("data", onData);
    socket.once("close", onEnd);
    socket.once("error", onEnd);
    socket.write("GET / HTTP/1.1\r\nhost: ledger\r\n\r\n");
  });
}

/** Whether a fresh connection with `m` gets a 200 through the inbound at `port`. */
async function _admitted(port: number, m: TlsMaterial, serverId: string): Promise<boolean> {
  let s: tls.TLSSocket | undefined;
  try {
    s = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: m.certPem,
      key: m.keyPem,
      ca: m.caPem,
      expectSpiffe: serverId,
      timeoutMs: 5_000,
    });
    return (await _tlsGet(s)).status === 200;
  } catch {
    return false;
  } finally {
    s?.destroy();
  }
}

/** Whether the socket gets closed by the peer within `ms`. */
function _closedWithin(socket: tls.TLSSocket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Connections per phase: 2^-(N-1) is the chance the kernel sends all to one of 2 workers. */
const SPREAD_CONNECTIONS = 12;

Deno.test("mTLS on every worker: updateMaterial and updateTrust reach all of them", async () => {
  const app = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("ledger"),
  );
  const ca1 = await testCa(TD);
  const ca2 = await testCa(TD);
  const mat = async (ca: CaState, svc: string, bundle: string): Promise<TlsMaterial> => {
    const l = await leaf(ca, svc);
    return { certPem: l.certPem, keyPem: l.keyPem, caPem: bundle };
  };
  const b1 = trustBundlePem(ca1);
  const b2 = trustBundlePem(ca2);
  const config = ProxyConfig.parse({
    node: "vm-ledger",
    control: ["https://127.0.0.1:9"],
    inbound: "127.0.0.1:0",
    admin: "127.0.0.1:0",
    workers: 2,
    services: [{ name: "ledger", port: app.addr.port }],
  });
  const ledgerId = `spiffe://${TD}/svc/ledger`;
  const planes = await WorkerDataPlanes.start(config, nullLogger, 2, {
    material: await mat(ca1, "ledger", b1),
    trustDomain: TD,
  }, {
    // Under `deno test` each worker type-checks its module first: slow on a busy machine.
    startTimeoutMs: 300_000,
  });
  const held: tls.TLSSocket[] = [];
  try {
    const port = planes.ports.inbound;
    const billing1 = await mat(ca1, "billing", b1);
    const perWorker = async () =>
      new Map((await planes.snapshots()).map((s) => [s.index, s.requests]));

    // --- before: mesh certificates are admitted on every worker, others on none.
    const other = await mat(await testCa(TD), "billing", b1);
    for (let i = 0; i < SPREAD_CONNECTIONS; i++) {
      assert(await _admitted(port, billing1, ledgerId), `connection ${i} with a mesh cert`);
      assert(!(await _admitted(port, other, ledgerId)), `connection ${i} with a foreign cert`);
    }
    const served = await perWorker();
    assertEquals(served.size, 2);
    for (const [w, n] of served) assert(n > 0, `worker ${w} served none of the connections`);

    // An established connection of billing, kept across the material update.
    const kept = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: billing1.certPem,
      key: billing1.keyPem,
      ca: b1,
      expectSpiffe: ledgerId,
    });
    held.push(kept);
    assertEquals((await _tlsGet(kept)).status, 200);

    // --- updateMaterial: the server now presents a CA2 leaf and trusts both CAs.
    planes.updateMaterial(await mat(ca2, "ledger", b1 + b2));
    await planes.snapshots(); // ordered after the update in every worker
    const billing2 = await mat(ca2, "billing", b2);
    const before = await perWorker();
    for (let i = 0; i < SPREAD_CONNECTIONS; i++) {
      // A client trusting only CA1 no longer accepts the server; one trusting CA2 does.
      assert(!(await _admitted(port, billing1, ledgerId)), `connection ${i}: old server cert`);
      assert(await _admitted(port, billing2, ledgerId), `connection ${i}: new server cert`);
    }
    const after = await perWorker();
    for (const [w, n] of after) {
      assert(n > (before.get(w) ?? 0), `worker ${w} served no connection with the new material`);
    }
    assertEquals((await _tlsGet(kept)).status, 200, "an established connection is kept");

    // --- updateTrust: CA1 dropped, billing revoked. Its open connection is cut; others pass.
    const orders = await mat(ca2, "orders", b2);
    const ordersConn = await mtlsConnect({
      host: "127.0.0.1",
      port,
      cert: orders.certPem,
      key: orders.keyPem,
      ca: b2,
      expectSpiffe: ledgerId,
    });
    held.push(ordersConn);
    assertEquals((await _tlsGet(ordersConn)).status, 200);
    planes.updateTrust({ roots: [b2], revoked: [`spiffe://${TD}/svc/billing`] });
    await planes.snapshots();
    assert(await _closedWithin(kept, 5_000), "the revoked caller's connection was closed");
    assertEquals((await _tlsGet(ordersConn)).status, 200, "other callers keep theirs");
    for (let i = 0; i < SPREAD_CONNECTIONS; i++) {
      assert(!(await _admitted(port, billing2, ledgerId)), `connection ${i}: revoked caller`);
      assert(await _admitted(port, orders, ledgerId), `connection ${i}: other caller`);
    }
  } finally {
    for (const s of held) s.destroy();
    await planes.drain(0);
    await app.shutdown();
  }
});

Deno.test("MeshTlsState: outbound connections use new material; a revoked server is cut and refused", async () => {
  const ca1 = await testCa(TD);
  const ca2 = await testCa(TD);
  const b1 = trustBundlePem(ca1);
  const ledger = await leaf(ca1, "ledger");
  const server = new MeshTlsState({
    material: { certPem: ledger.certPem, keyPem: ledger.keyPem, caPem: b1 },
    trustDomain: TD,
  });
  const listener = await listenMtls(server, "127.0.0.1", 0, nullLogger);
  const billing = await leaf(ca1, "billing");
  const client = new MeshTlsState({
    material: { certPem: billing.certPem, keyPem: billing.keyPem, caPem: b1 },
    trustDomain: TD,
  });
  const ep: Endpoint = {
    key: "ledger-1",
    hostname: "127.0.0.1",
    port: listener.addr.port,
    identity: `spiffe://${TD}/svc/ledger`,
  };
  const accepted: Deno.Conn[] = [];
  const echo = (async () => {
    for await (const c of listener) {
      accepted.push(c);
      (async () => {
        const buf = new Uint8Array(64);
        try {
          while (true) {
            const n = await c.read(buf);
            if (n === null) break;
            await c.write(buf.subarray(0, n));
          }
        } catch {
          // cut
        }
      })();
    }
  })();
  const ping = async (c: Deno.Conn): Promise<boolean> => {
    try {
      await c.write(new Uint8Array([1, 2, 3]));
      const buf = new Uint8Array(8);
      return (await c.read(buf)) === 3;
    } catch {
      return false;
    }
  };
  try {
    const first = await connectMtls(client, ep, undefined, { outbound: "auto" });
    assert(await ping(first));
    assert(first instanceof NativeTlsConn, "CA-issued leaves: the native client is used");
    assertEquals(client.openConnections, 1);

    // New material from a CA the server does not trust: new handshakes fail (the server cuts
    // them right after the TLS 1.3 handshake), the established connection carries on.
    const foreign = await leaf(ca2, "billing");
    client.updateMaterial({ certPem: foreign.certPem, keyPem: foreign.keyPem, caPem: b1 });
    let refused = false;
    try {
      const c = await connectMtls(client, ep, undefined, { outbound: "auto" });
      refused = !(await ping(c));
      try {
        c.close();
      } catch {
        // cut by the server already
      }
    } catch {
      refused = true;
    }
    assert(refused, "a certificate from an untrusted CA must not get through");
    assert(await ping(first), "the established connection is kept");
    client.updateMaterial({ certPem: billing.certPem, keyPem: billing.keyPem, caPem: b1 });
    const second = await connectMtls(client, ep, undefined, { outbound: "auto" });
    assert(await ping(second));

    // Revoking the server's identity cuts both open connections and refuses new ones.
    client.updateTrust({ roots: [b1], revoked: [ep.identity!] });
    assertEquals(client.openConnections, 0);
    assert(!(await ping(first)));
    assert(!(await ping(second)));
    await assertRejects(
      () => connectMtls(client, ep, undefined, { outbound: "auto" }),
      MtlsConnectError,
      "revoked",
    );
  } finally {
    listener.close();
    for (const c of accepted) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    await echo;
  }
});

Deno.test("native outbound: a server the runtime's own roots vouch for but not the mesh CA is refused", async () => {
  // Deno.connectTls trusts its default roots (the public web PKI, plus DENO_CERT) besides the
  // caCerts given. A child process with DENO_CERT = another CA's root stands in for "a public CA
  // signed ledger.svc.<td>": that server's leaf carries the right DNS name and SPIFFE id.
  const ours = await testCa(TD);
  const other = await testCa(TD);
  const dir = await Deno.makeTempDir({ prefix: "skein-native-roots-" });
  const impostor = await leaf(other, "ledger");
  const srv = await whoamiServer({
    cert: impostor.certPem,
    key: impostor.keyPem,
    ca: trustBundlePem(ours),
  });
  try {
    await Deno.writeTextFile(`${dir}/other-root.pem`, trustBundlePem(other));
    const billing = await leaf(ours, "billing");
    const mod = new URL("../../mesh/tls/mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/child.ts`,
      `import { connectMtls } from ${JSON.stringify(mod)};
const t = JSON.parse(Deno.args[0]);
try {
  const c = await connectMtls(t, JSON.parse(Deno.args[1]), 5000, { outbound: "native" });
  console.log("CONNECTED", c.constructor.name);
} catch (e) {
  console.log("REFUSED", e.message);
}
`,
    );
    const material = {
      certPem: billing.certPem,
      keyPem: billing.keyPem,
      caPem: trustBundlePem(ours),
    };
    const ep: Endpoint = {
      key: "ledger",
      hostname: "127.0.0.1",
      port: srv.port,
      identity: `spiffe://${TD}/svc/ledger`,
    };
    const runChild = async (extraRoot: boolean) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          "--config",
          new URL("../../deno.json", import.meta.url).pathname,
          `${dir}/child.ts`,
          JSON.stringify({ material, trustDomain: TD }),
          JSON.stringify(ep),
        ],
        env: extraRoot ? { DENO_CERT: `${dir}/other-root.pem` } : {},
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    };
    // Without the extra root, rustls itself refuses the chain.
    assert((await runChild(false)).includes("REFUSED"), "unknown CA");
    // With it, rustls accepts the chain and the name; our own check against the mesh roots
    // must still refuse.
    const withRoot = await runChild(true);
    assert(withRoot.includes("REFUSED"), withRoot);
    assert(withRoot.includes("not from the mesh CA"), withRoot);
  } finally {
    await srv.srv.close({ destroyConnections: true });
    await Deno.remove(dir, { recursive: true });
  }
});
