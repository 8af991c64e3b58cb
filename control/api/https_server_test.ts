import assert from "node:assert/strict";
import tls from "node:tls";
import { createCa, issueCertificate, trustBundlePem } from "../ca/mod.ts";
import type { TlsMaterial } from "../../common/tls/mod.ts";
import { type ApiHandler, MAX_PIPELINED_REQUESTS, serveApiHttps } from "./https_server.ts";

async function material(): Promise<
  { m: TlsMaterial; serial: string; ca: Awaited<ReturnType<typeof createCa>> }
> {
  const now = Date.now();
  const ca = await createCa({ trustDomain: "skein.local", now });
  const leaf = await issueCertificate(ca, {
    identity: { kind: "control", node: "cp-1" },
    extraSans: { ip: ["127.0.0.1"] },
    now,
  });
  return {
    m: { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: trustBundlePem(ca) },
    serial: leaf.serial,
    ca,
  };
}

function serverSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, minVersion: "TLSv1.3" }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.on("error", reject);
  });
}

Deno.test("serveApiHttps() streams bodies both ways and hands the handler no peer without a cert", async () => {
  const { m } = await material();
  const seen: (string | null)[] = [];
  const handler: ApiHandler = async (req, info) => {
    seen.push(info.peer?.uri ?? null);
    if (req.method === "POST") {
      // Echo the byte count, read as a stream.
      let n = 0;
      for await (const c of req.body!) n += c.byteLength;
      return Response.json({ n });
    }
    const chunks = 5;
    let i = 0;
    return new Response(
      new ReadableStream({
        pull(ctrl) {
          if (i++ < chunks) ctrl.enqueue(new Uint8Array(64 * 1024).fill(97));
          else ctrl.close();
        },
      }),
    );
  };
  const srv = await serveApiHttps({ hostname: "127.0.0.1", port: 0, material: m, handler });
  const client = Deno.createHttpClient({ caCerts: [m.caPem] });
  try {
    const base = `https://127.0.0.1:${srv.port}`;
    const big = await fetch(`${base}/stream`, { client });
    assert.equal((await big.arrayBuffer()).byteLength, 5 * 64 * 1024);
    const body = new Uint8Array(300_000);
    const posted = await fetch(`${base}/echo`, { client, method: "POST", body });
    assert.deepEqual(await posted.json(), { n: 300_000 });
    assert.deepEqual(seen, [null, null]);
  } finally {
    client.close();
    await srv.shutdown(1000);
  }
});

Deno.test("updateMaterial() serves the new certificate to new connections", async () => {
  const a = await material();
  const b = await material();
  const srv = await serveApiHttps({
    hostname: "127.0.0.1",
    port: 0,
    material: a.m,
    handler: () => new Response("ok"),
  });
  try {
    assert.equal(await serverSerial(srv.port, a.m.caPem), a.serial.toUpperCase());
    srv.updateMaterial(b.m);
    assert.equal(await serverSerial(srv.port, b.m.caPem), b.serial.toUpperCase());
  } finally {
    await srv.shutdown(1000);
  }
});

Deno.test("shutdown() lets an in-flight request finish, then refuses new connections", async () => {
  const { m } = await material();
  const release = Promise.withResolvers<void>();
  const started = Promise.withResolvers<void>();
  const srv = await serveApiHttps({
    hostname: "127.0.0.1",
    port: 0,
    material: m,
    handler: async () => {
      started.resolve();
      await release.promise;
      return new Response("done");
    },
  });
  const client = Deno.createHttpClient({ caCerts: [m.caPem] });
  try {
    const pending = fetch(`https://127.0.0.1:${srv.port}/slow`, { client });
    await started.promise;
    const stopping = srv.shutdown(10_000);
    assert.equal(srv.stats.requestsInFlight, 1);
    release.resolve();
    const res = await pending;
    assert.equal(await res.text(), "done");
    await stopping;
    await assert.rejects(fetch(`https://127.0.0.1:${srv.port}/again`, { client }));
  } finally {
    client.close();
  }
});

/** Opens a TLS connection, writes `data`, and collects what comes back until the server closes. */
function rawExchange(
  port: number,
  ca: string,
  data: string[],
  holdMs = 0,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const s = tls.connect({ host: "127.0.0.1", port, ca, minVersion: "TLSv1.3" }, async () => {
      for (const d of data) {
        s.write(d);
        if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
      }
    });
    s.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
    // A keep-alive connection stays open: the caller ends it by asking for `connection: close`.
    const bound = setTimeout(() => s.destroy(), 10_000);
    s.on("error", reject);
    s.on("close", () => {
      clearTimeout(bound);
      resolve(out);
    });
  });
}

Deno.test("small bodies reach the handler whole; an unread one does not break keep-alive", async () => {
  const { m } = await material();
  const got: string[] = [];
  const handler: ApiHandler = async (req) => {
    if (req.url.endsWith("/read")) got.push(await req.text());
    // `/ignore` answers without touching its body.
    return Response.json({ path: new URL(req.url).pathname });
  };
  const srv = await serveApiHttps({ hostname: "127.0.0.1", port: 0, material: m, handler });
  try {
    const body = JSON.stringify({ v: "é".repeat(40) });
    const len = new TextEncoder().encode(body).byteLength;
    const out = await rawExchange(srv.port, m.caPem, [
      `POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: ${len}\r\n\r\n${body}`,
      `POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: ${len}\r\n\r\n`,
      body,
      `GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    ], 20);
    assert.equal(out.match(/HTTP\/1\.1 200/g)?.length, 3, out);
    assert.ok(out.includes(`"path":"/ignore"`) && out.includes(`"path":"/last"`), out);
    assert.ok(out.includes(`content-length: ${JSON.stringify({ path: "/read" }).length}`), out);
    assert.deepEqual(got, [body]);
  } finally {
    await srv.shutdown(1000);
  }
});

Deno.test("a body that stops arriving is cut at the body timeout, before the handler runs", async () => {
  const { m } = await material();
  let calls = 0;
  const handler: ApiHandler = () => {
    calls++;
    return Response.json({});
  };
  const srv = await serveApiHttps({
    hostname: "127.0.0.1",
    port: 0,
    material: m,
    handler,
    requestTimeoutMs: 200,
  });
  try {
    const out = await rawExchange(srv.port, m.caPem, [
      `PUT /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":`,
    ]);
    assert.equal(out, "");
    assert.equal(calls, 0);
    assert.equal(srv.stats.refused.body_timeout, 1);
    assert.equal(srv.stats.refused.headers_timeout, 0);
  } finally {
    await srv.shutdown(1000);
  }
});

/** Opens a TLS connection: the socket once the handshake is done, or null when the server closed it. */
function tlsOpen(port: number, ca: string): Promise<tls.TLSSocket | null> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, minVersion: "TLSv1.3" }, () => resolve(s));
    s.on("error", () => resolve(null));
    s.on("close", () => resolve(null));
  });
}

Deno.test("connections beyond the per-address and total caps are closed before any TLS", async () => {
  const { m } = await material();
  const held: tls.TLSSocket[] = [];
  const servers: Awaited<ReturnType<typeof serveApiHttps>>[] = [];
  const serve = async (caps: { maxConnections?: number; maxConnectionsPerAddress?: number }) => {
    const s = await serveApiHttps({
      hostname: "127.0.0.1",
      port: 0,
      material: m,
      handler: () => Response.json({}),
      ...caps,
    });
    servers.push(s);
    return s;
  };
  /** Whether a new connection is admitted (it is kept open). */
  const admitted = async (port: number) => {
    const s = await tlsOpen(port, m.caPem);
    if (s !== null) held.push(s);
    return s !== null;
  };
  try {
    // One address: three admitted, the fourth closed; a closed one frees its slot.
    const perAddress = await serve({ maxConnectionsPerAddress: 3 });
    for (let i = 0; i < 3; i++) {
      assert.equal(await admitted(perAddress.port), true, `${i + 1} of 3`);
    }
    assert.equal(await admitted(perAddress.port), false);
    assert.equal(perAddress.stats.refused.address_limit, 1);
    const first = held.shift()!;
    const gone = new Promise((r) => first.once("close", r));
    first.destroy();
    await gone;
    // The server sees the close a moment after the client: try until the slot is free.
    let back = false;
    for (let i = 0; i < 50 && !back; i++) back = await admitted(perAddress.port);
    assert.equal(back, true);
    // The total, whatever the addresses.
    const total = await serve({ maxConnections: 2 });
    assert.equal(await admitted(total.port), true);
    assert.equal(await admitted(total.port), true);
    assert.equal(await admitted(total.port), false);
    assert.equal(total.stats.refused.connection_limit, 1);
    assert.equal(total.stats.refused.address_limit, 0);
  } finally {
    for (const s of held) s.destroy();
    for (const s of servers) await s.shutdown(1000);
  }
});

Deno.test("proxies with mesh certificates behind one address are not held to the per-address cap", async () => {
  const { m, ca } = await material();
  const leaf = await issueCertificate(ca, {
    identity: { kind: "service", service: "web" },
    now: Date.now(),
  });
  const held: tls.TLSSocket[] = [];
  const srv = await serveApiHttps({
    hostname: "127.0.0.1",
    port: 0,
    material: m,
    handler: () => Response.json({}),
    maxConnectionsPerAddress: 2,
  });
  /** Whether a new connection (with the proxy's certificate when `mesh`) is admitted. */
  const admitted = (mesh: boolean) =>
    new Promise<boolean>((resolve) => {
      const s = tls.connect({
        host: "127.0.0.1",
        port: srv.port,
        ca: m.caPem,
        minVersion: "TLSv1.3",
        ...(mesh ? { cert: leaf.certPem, key: leaf.keyPem } : {}),
      });
      s.on("error", () => resolve(false));
      s.on("close", () => resolve(false));
      // A TLS 1.3 client finishes before the server has read its certificate: an answer proves
      // the server admitted the connection.
      s.on("secureConnect", () => s.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
      s.once("data", () => {
        held.push(s);
        resolve(true);
      });
    });
  try {
    // Five proxies from one address, more than the cap of two: all admitted and kept.
    for (let i = 0; i < 5; i++) assert.equal(await admitted(true), true, `proxy ${i + 1}`);
    // Anonymous clients from that address still meet the cap.
    assert.equal(await admitted(false), true);
    assert.equal(await admitted(false), true);
    assert.equal(await admitted(false), false);
    assert.equal(srv.stats.refused.address_limit, 1);
  } finally {
    for (const s of held) s.destroy();
    await srv.shutdown(1000);
  }
});

Deno.test("a connection pipelining more requests than the cap without reading answers is closed", async () => {
  const { m } = await material();
  let calls = 0;
  const never = Promise.withResolvers<Response>();
  const srv = await serveApiHttps({
    hostname: "127.0.0.1",
    port: 0,
    material: m,
    handler: () => {
      calls++;
      return never.promise; // a blocking query that never ends
    },
  });
  try {
    const s = await tlsOpen(srv.port, m.caPem);
    assert.ok(s !== null);
    const closed = new Promise<void>((r) => s.once("close", () => r()));
    s.write("GET /v1/catalog?index=1&wait=300s HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20));
    await closed;
    assert.ok(srv.stats.refused.pipeline_limit >= 1);
    assert.equal(calls, MAX_PIPELINED_REQUESTS);
  } finally {
    never.resolve(Response.json({}));
    await srv.shutdown(1000);
  }
});

Deno.test("a client that stops reading a large answer is cut and counted; its answer does not pin the server", async () => {
  const { m } = await material();
  const big = new Uint8Array(32 * 1024 * 1024).fill(0x20);
  const srv = await serveApiHttps({
    hostname: "127.0.0.1",
    port: 0,
    material: m,
    handler: () => new Response(big, { headers: { "content-type": "application/json" } }),
    headersTimeoutMs: 300,
  });
  try {
    const s = await tlsOpen(srv.port, m.caPem);
    assert.ok(s !== null);
    s.pause(); // reads nothing: a watcher that stopped reading
    s.write("GET /v1/catalog HTTP/1.1\r\nHost: x\r\n\r\n");
    const t0 = Date.now();
    while (srv.stats.refused.headers_timeout === 0) {
      assert.ok(Date.now() - t0 < 60_000, "the stalled reader was never cut");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(srv.stats.requestsInFlight, 0);
    s.destroy();
  } finally {
    await srv.shutdown(1000);
  }
});
