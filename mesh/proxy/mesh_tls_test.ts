import { assert, assertEquals, assertMatch, assertRejects } from "../../tests/assert.ts";
import { leaf, testCa } from "../../tests/security/_pki.ts";
import { trustBundlePem } from "../../control/ca/mod.ts";
import { MtlsConnectError } from "../../common/tls.ts";
import { nullLogger } from "../../common/log.ts";
import {
  ConnectionPool,
  type Endpoint,
  HttpForwarder,
  type Router,
  staticRouter,
} from "../forward/mod.ts";
import type { RequestHead } from "../http1/mod.ts";
import { connectMtls, listenMtls, type MeshTls, serviceSpiffeId } from "./mesh_tls.ts";
import { sourceLabel } from "./router.ts";

const TD = "skein.local";

async function meshTls(ca: Awaited<ReturnType<typeof testCa>>, svc: string): Promise<MeshTls> {
  const l = await leaf(ca, svc);
  return {
    material: { certPem: l.certPem, keyPem: l.keyPem, caPem: trustBundlePem(ca) },
    trustDomain: TD,
  };
}

async function readAll(c: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(1024);
  let out = "";
  while (true) {
    const n = await c.read(buf);
    if (n === null) return out;
    out += new TextDecoder().decode(buf.subarray(0, n));
  }
}

Deno.test("TlsConn carries bytes both ways over mTLS, half-closes, and knows the peer", async () => {
  const ca = await testCa();
  const server = await meshTls(ca, "ledger");
  const client = await meshTls(ca, "billing");
  const listener = await listenMtls(server, "127.0.0.1", 0, nullLogger);
  try {
    const ep: Endpoint = {
      key: "x",
      hostname: "127.0.0.1",
      port: listener.addr.port,
      identity: serviceSpiffeId(TD, "ledger"),
    };
    const [c, s] = await Promise.all([connectMtls(client, ep), listener.accept()]);
    assertEquals(s.peerIdentity, "spiffe://skein.local/svc/billing");
    assertEquals(c.peerIdentity, "spiffe://skein.local/svc/ledger");
    // Larger than one TLS record and than a read buffer. (A half-close right after a
    // multi-megabyte write can lose its FIN in Deno's node:tls: see docs/security.md.)
    const big = new Uint8Array(256 * 1024).fill(7);
    const sent = c.write(big).then(() => c.closeWrite());
    let got = 0;
    const buf = new Uint8Array(16 * 1024);
    while (true) {
      const n = await s.read(buf);
      if (n === null) break;
      assertEquals(buf[0], 7);
      got += n;
    }
    await sent;
    assertEquals(got, big.length);
    // The client half-closed; the server can still answer.
    await s.write(new TextEncoder().encode("done"));
    await s.closeWrite();
    assertEquals(await readAll(c), "done");
    c.close();
    s.close();
  } finally {
    listener.close();
  }
});

Deno.test("connectMtls() refuses a server that is not the destination meant", async () => {
  const ca = await testCa();
  const listener = await listenMtls(await meshTls(ca, "ledger"), "127.0.0.1", 0, nullLogger);
  const client = await meshTls(ca, "billing");
  const base = { key: "x", hostname: "127.0.0.1", port: listener.addr.port };
  try {
    const e = await assertRejects(
      () => connectMtls(client, { ...base, identity: serviceSpiffeId(TD, "payments") }),
      MtlsConnectError,
    );
    assertEquals(e.kind, "identity");
    await assertRejects(() => connectMtls(client, base), Error, "no expected identity");
    // A client from another CA gets nothing: the server closes it before accept().
    const foreign = await meshTls(await testCa(), "billing");
    const c = await connectMtls(foreign, { ...base, identity: serviceSpiffeId(TD, "ledger") })
      .catch(() => null);
    if (c !== null) {
      const r = await c.read(new Uint8Array(16)).catch(() => null);
      assertEquals(r, null);
    }
  } finally {
    listener.close();
  }
});

Deno.test("the forwarder over mTLS: the inbound router sees the caller; a wrong server is a 502", async () => {
  const ca = await testCa();
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    return new Response("ledger-app");
  });
  const seen: (string | null)[] = [];
  const toApp = staticRouter({
    endpoints: [{ key: "app", hostname: "127.0.0.1", port: app.addr.port }],
  });
  const inboundRouter: Router = {
    route(head: RequestHead, listener, client) {
      seen.push(client.identity);
      return toApp.route(head, listener, client);
    },
  };
  const inbound = new HttpForwarder(
    await listenMtls(await meshTls(ca, "ledger"), "127.0.0.1", 0, nullLogger),
    {
      node: "in",
      listener: { name: "inbound", protocol: "http" },
      router: inboundRouter,
      logger: nullLogger,
    },
  );
  const client = await meshTls(ca, "billing");
  const pool = new ConnectionPool({ connect: (ep) => connectMtls(client, ep) });
  const ep = (svc: string): Endpoint => ({
    key: `127.0.0.1:${inbound.addr.port}`,
    hostname: "127.0.0.1",
    port: inbound.addr.port,
    identity: serviceSpiffeId(TD, svc),
  });
  const outbound = (svc: string) =>
    new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
      node: "out",
      listener: { name: "upstream", protocol: "http" },
      router: staticRouter({ cluster: svc, endpoints: [ep(svc)] }),
      logger: nullLogger,
      pool,
    });
  const good = outbound("ledger");
  const wrong = outbound("payments");
  try {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`http://127.0.0.1:${good.addr.port}/`);
      assertEquals(await r.text(), "ledger-app");
    }
    assertEquals(seen, Array(3).fill("spiffe://skein.local/svc/billing"));
    assert(pool.stats().reused >= 1, JSON.stringify(pool.stats()));

    const r = await fetch(`http://127.0.0.1:${wrong.addr.port}/`);
    const body = await r.text();
    assertEquals(r.status, 502);
    assertEquals(r.headers.get("x-skein-error"), "upstream_connect_failure");
    assertMatch(body, /expected spiffe:\/\/skein\.local\/svc\/payments/);
    assertEquals(seen.length, 3, "the wrong destination never reached the inbound router");
  } finally {
    await good.close();
    await wrong.close();
    pool.close();
    await inbound.close();
    await app.shutdown();
  }
});

Deno.test("sourceLabel() names the calling service", () => {
  assertEquals(sourceLabel("spiffe://skein.local/svc/billing"), "billing");
  assertEquals(
    sourceLabel("spiffe://skein.local/control/cp-1"),
    "spiffe://skein.local/control/cp-1",
  );
});
