/**
 * Hostile internet input against the gateway's ingress listeners, over raw sockets with real
 * processes: smuggling shapes, malformed and oversized heads, oversized bodies, slow heads and
 * handshakes, and too many connections from one address. Each is refused cleanly (an error
 * status and a closed connection, or a closed connection), reaches no app, and the gateway
 * keeps serving.
 * @module
 */
import tls from "node:tls";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { createJoinToken, runSkein } from "../skein_cli.ts";
import { sharedSeed } from "../tls_fixture.ts";
import {
  metricsText,
  type ProxyHandle,
  rawGet,
  startControl,
  startProxy,
  waitEligible,
  waitFor,
} from "./helpers.ts";
import { makeCert } from "./ingress_pki.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function split(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  return { hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

/** Reads until the server closes (or resets) the connection; bounded by `timeoutMs`. */
async function readToEnd(c: Deno.Conn, timeoutMs = 20_000): Promise<string> {
  const chunks: string[] = [];
  const buf = new Uint8Array(64 * 1024);
  const timer = setTimeout(() => c.close(), timeoutMs);
  try {
    while (true) {
      const n = await c.read(buf);
      if (n === null) break;
      chunks.push(dec.decode(buf.subarray(0, n)));
    }
  } catch (e) {
    if (e instanceof Deno.errors.BadResource) throw new Error(`still open after ${timeoutMs}ms`);
    // Reset by the server: also an end.
  } finally {
    clearTimeout(timer);
  }
  return chunks.join("");
}

/** Sends `text` on a new connection and returns everything the server sends until it closes. */
async function exchange(addr: string, text: string): Promise<string> {
  const c = await Deno.connect(split(addr));
  try {
    await c.write(enc.encode(text));
    return await readToEnd(c);
  } finally {
    try {
      c.close();
    } catch {
      // Closed already.
    }
  }
}

Deno.test("the ingress listener refuses hostile input cleanly and keeps serving", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-ingress-hostile-" });
  const cp = await startControl(dir);
  const seen: string[] = [];
  const whoami: string[] = [];
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    if (u.pathname === "/whoami") {
      whoami.push(`${req.headers.get("x-forwarded-proto")}|${req.headers.get("x-skein-caller")}`);
    }
    if (u.pathname !== "/healthz") seen.push(`${req.method} ${u.pathname}`);
    await req.body?.cancel();
    return new Response("frontend");
  });
  const proxies: ProxyHandle[] = [];
  try {
    const cert = await makeCert(dir, "shop", ["shop.example.com"]);
    proxies.push(
      await startProxy(dir, {
        node: "vm-web",
        control: [cp.url],
        workers: 1,
        services: [{ name: "frontend", port: app.addr.port }],
      }),
    );
    await Deno.writeTextFile(
      `${dir}/gw.token`,
      await createGatewayToken(cp.url, cp.token, "edge"),
    );
    const limits = {
      max_connections_per_address: 4,
      max_body_bytes: "1KiB",
      max_header_bytes: "4KiB",
      header_read_timeout: "1s",
    };
    const gw = await startProxy(dir, {
      node: "gw",
      control: [cp.url],
      token_file: `${dir}/gw.token`,
      gateway: "edge",
      workers: 1,
      ingress: [
        { listen: "127.0.0.1:0", routes: [{ service: "frontend" }], limits },
        {
          listen: "127.0.0.1:0",
          tls: { cert_file: cert.cert, key_file: cert.key },
          routes: [{ service: "frontend" }],
          limits,
        },
      ],
    });
    proxies.push(gw);
    const [plain, secure] = gw.ingress as [string, string];
    await waitEligible(gw, "frontend", 1);
    assertEquals((await rawGet(plain, "shop.example.com")).body, "frontend");
    // The app learns the scheme from the listener and the caller from the mesh hop, whatever
    // the client claims in those headers.
    const claims = "X-Forwarded-Proto: https\r\nX-Skein-Caller: spiffe://skein.local/svc/admin\r\n";
    await exchange(
      plain,
      `GET /whoami HTTP/1.1\r\nHost: shop\r\n${claims}Connection: close\r\n\r\n`,
    );
    await tlsGet(secure, 0, "/whoami", claims.replace("https", "http"));
    const gwId = "spiffe://skein.local/gateway/edge";
    assertEquals(whoami, [`http|${gwId}`, `https|${gwId}`]);
    seen.length = 0;

    const refused: [string, string, RegExp][] = [
      [
        "Content-Length with Transfer-Encoding",
        "POST / HTTP/1.1\r\nHost: shop\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shop\r\n\r\n",
        /^HTTP\/1\.1 400 /,
      ],
      [
        "two different Content-Lengths",
        "POST / HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
        /^HTTP\/1\.1 400 /,
      ],
      [
        "an obs-folded header",
        "GET / HTTP/1.1\r\nHost: shop\r\nX-A: a\r\n b\r\n\r\n",
        /^HTTP\/1\.1 400 /,
      ],
      [
        "a malformed request line",
        "GET /  HTTP/1.1 x\r\nHost: shop\r\n\r\n",
        /^HTTP\/1\.1 400 /,
      ],
      [
        "a head over max_header_bytes",
        `GET / HTTP/1.1\r\nHost: shop\r\nX-Big: ${"a".repeat(5000)}\r\n\r\n`,
        /^HTTP\/1\.1 431 /,
      ],
      [
        "a Content-Length over max_body_bytes",
        `POST / HTTP/1.1\r\nHost: shop\r\nContent-Length: 2048\r\n\r\n${"a".repeat(2048)}`,
        /^HTTP\/1\.1 413 /,
      ],
      [
        "a Transfer-Encoding other than chunked",
        "POST / HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip\r\n\r\nxyz",
        /^HTTP\/1\.1 (400|501) /,
      ],
    ];
    for (const [what, text, status] of refused) {
      const got = await exchange(plain, text);
      assertMatch(got, status, `${what}: ${got.slice(0, 200)}`);
      assertMatch(got, /x-skein-error: bad_request/i, what);
      // One answer, then the connection is closed: nothing after it is read as a request.
      assertEquals(got.match(/HTTP\/1\.1 /g)?.length, 1, `${what}: ${got}`);
    }
    assertEquals(seen, [], "no refused request reached the app");

    // A bad chunk size or a chunked body over the limit ends the exchange; the app never
    // sees a complete request from it, and no second request rides on the connection.
    for (
      const body of [
        "zz\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shop\r\n\r\n",
        `400\r\n${"a".repeat(1024)}\r\n400\r\n${"a".repeat(1024)}\r\n0\r\n\r\n`,
      ]
    ) {
      const got = await exchange(
        plain,
        `POST /chunked HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
      );
      assert(!/HTTP\/1\.1 200/.test(got), got.slice(0, 200));
      assert(!seen.includes("GET /smuggled"), "a smuggled request reached the app");
    }

    // Slowloris: a head that never ends is cut at header_read_timeout.
    const slow = await Deno.connect(split(plain));
    await slow.write(enc.encode("GET / HTTP/1.1\r\nHost: shop\r\nX-Slow: 1\r\n"));
    const slowGot = await readToEnd(slow);
    slow.close();
    assert(!/HTTP\/1\.1 200/.test(slowGot), slowGot);
    // A TLS client that never finishes its handshake is cut the same way.
    const silentTls = await Deno.connect(split(secure));
    await readToEnd(silentTls);
    silentTls.close();

    // Per-address cap: four silent connections are held, the fifth is closed at once.
    const held: Deno.Conn[] = [];
    for (let i = 0; i < 4; i++) held.push(await Deno.connect(split(plain)));
    // The listener accepts them in order; the next one over the cap ends with nothing sent.
    await waitFor("the fifth connection to be refused", async () => {
      const extra = await Deno.connect(split(plain));
      const got = await readToEnd(extra, 5_000).catch(() => "open");
      try {
        extra.close();
      } catch {
        // Closed by the server.
      }
      return got === "";
    });
    for (const c of held) c.close();
    // Slots come back when connections end: the same address is served again.
    await waitFor(
      "the address to be served again",
      async () => (await rawGet(plain, "shop.example.com")).body === "frontend",
    );
    // The TLS listener counts handshakes too: five silent TCP connections, the fifth refused.
    const heldTls: Deno.Conn[] = [];
    for (let i = 0; i < 4; i++) heldTls.push(await Deno.connect(split(secure)));
    const fifth = await Deno.connect(split(secure));
    assertEquals(await readToEnd(fifth, 5_000), "");
    fifth.close();
    for (const c of heldTls) c.close();
    // Both refusals are counted per listener, for the operator to see the flood.
    const m = await metricsText(gw);
    assertMatch(m, /skein_ingress_connections_refused_total\{listener="ingress:0"\} [1-9]/);
    assertMatch(m, /skein_ingress_connections_refused_total\{listener="ingress:1"\} [1-9]/);
    assertEquals((await rawGet(plain, "shop.example.com")).body, "frontend");

    // A finished handshake is not cut by the handshake timeout: a TLS client that waits past
    // header_read_timeout before its first request is served.
    assertMatch(await tlsGet(secure, 2_500), /^HTTP\/1\.1 200 [\s\S]*frontend$/);
    // TLS connections give their address's slots back when they close: more than the cap, one
    // after another, are all served.
    for (let i = 0; i < 10; i++) {
      assertMatch(await tlsGet(secure, 0), /^HTTP\/1\.1 200 /, `TLS connection ${i + 1}`);
    }

    // A listener whose certificate cannot be used does not start, and says which file.
    await Deno.writeTextFile(
      `${dir}/gw2.token`,
      await createGatewayToken(cp.url, cp.token, "edge2"),
    );
    await Deno.writeTextFile(
      `${dir}/gw2.yaml`,
      JSON.stringify({
        node: "gw2",
        control: [cp.url],
        ca_file: (await sharedSeed()).certFile,
        token_file: `${dir}/gw2.token`,
        data_dir: `${dir}/gw2-data`,
        admin: "127.0.0.1:0",
        inbound: "127.0.0.1:0",
        gateway: "edge2",
        ingress: [{
          listen: "127.0.0.1:0",
          tls: { cert_file: `${dir}/missing.pem`, key_file: cert.key },
          routes: [{ service: "frontend" }],
        }],
      }),
    );
    const bad = await runSkein(["proxy", "--config", `${dir}/gw2.yaml`]);
    assertEquals(bad.code, 1, bad.stderr);
    assertMatch(bad.stderr, /proxy failed to start.*missing\.pem/);
  } finally {
    for (const p of proxies.reverse()) await p.child.stop();
    await app.shutdown();
    await cp.child.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/**
 * One GET over a new TLS connection (SNI shop.example.com; the self-signed test certificate is
 * not checked), sent `waitMs` after the handshake; everything until the server closes.
 */
function tlsGet(addr: string, waitMs: number, path = "/", lines = ""): Promise<string> {
  const { hostname, port } = split(addr);
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    const s = tls.connect({
      host: hostname,
      port,
      servername: "shop.example.com",
      rejectUnauthorized: false,
    }, () => {
      setTimeout(
        () => s.write(`GET ${path} HTTP/1.1\r\nHost: shop\r\n${lines}Connection: close\r\n\r\n`),
        waitMs,
      );
    });
    s.on("data", (c: Uint8Array) => chunks.push(dec.decode(c)));
    s.on("error", reject);
    s.on("close", () => resolve(chunks.join("")));
  });
}

/** A gateway join token through the real CLI. */
async function createGatewayToken(url: string, admin: string, name: string): Promise<string> {
  return await createJoinToken(url, admin, name, "1h", "gateway");
}
