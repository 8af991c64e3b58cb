/**
 * A hostile caller against real proxies (regressions of issue 24's items 4 and 5): identity
 * fields a caller forges never reach the callee's app, which gets one `x-skein-caller` with the
 * verified caller and one `x-forwarded-for` list; `%3B` in a path, lower-case methods and
 * method-override fields do not get past an `Authorization`; `Content-Length: 5, 5` reaches the
 * app as one number; and an absolute-form target on `http_proxy` routes by the URI's host.
 * The callee's app is a raw TCP server that answers with the exact head it received, so
 * repeated lines and spellings are visible.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import {
  applyResources,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** A keep-alive HTTP/1.1 app answering every request with `head\n\nbody` as it received them. */
function rawEchoApp(): { port: number; close: () => void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of l) {
      (async () => {
        let buf: Uint8Array = new Uint8Array(0);
        const chunk = new Uint8Array(16 * 1024);
        try {
          while (true) {
            let end = -1;
            while ((end = _indexOfBlank(buf)) < 0) {
              const n = await conn.read(chunk);
              if (n === null) return;
              buf = _concat(buf, chunk.subarray(0, n));
            }
            const head = _dec.decode(buf.subarray(0, end));
            const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
            const len = cl ? Number(cl[1]) : 0;
            while (buf.length < end + 4 + len) {
              const n = await conn.read(chunk);
              if (n === null) return;
              buf = _concat(buf, chunk.subarray(0, n));
            }
            const body = _dec.decode(buf.subarray(end + 4, end + 4 + len));
            buf = buf.slice(end + 4 + len);
            const out = _enc.encode(`${head}\n\n${body}`);
            await conn.write(_enc.encode(
              `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${out.length}\r\n\r\n`,
            ));
            await conn.write(out);
          }
        } catch {
          // The proxy closed the connection.
        } finally {
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
      })();
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

function _indexOfBlank(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function _concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}

/** Sends `raw` (a whole request with `connection: close`) and reads the answer to the end. */
async function rawExchange(addr: string, raw: string): Promise<{ status: number; body: string }> {
  const i = addr.lastIndexOf(":");
  const c = await Deno.connect({ hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
  try {
    await c.write(_enc.encode(raw));
    let all: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(16 * 1024);
    while (true) {
      const n = await c.read(chunk);
      if (n === null) break;
      all = _concat(all, chunk.subarray(0, n));
    }
    const text = _dec.decode(all);
    const split = text.indexOf("\r\n\r\n");
    return { status: Number(text.split(" ")[1]), body: text.slice(split + 4) };
  } finally {
    try {
      c.close();
    } catch {
      // Closed by the proxy.
    }
  }
}

/** The field lines (lower-cased names) of the head the app received. */
function receivedFields(body: string): [string, string][] {
  const head = body.slice(0, body.indexOf("\n\n"));
  return head.split("\r\n").slice(1).map((l) => {
    const c = l.indexOf(":");
    return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()];
  });
}

Deno.test("a hostile caller cannot forge identity fields or slip past Authorization through parsing edges", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-hostile-caller-" });
  const cp = await startControl(dir);
  const ledgerApp = rawEchoApp();
  const billingApp = startApp("billing");
  const proxies: ProxyHandle[] = [];
  try {
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      workers: 1,
      services: [{ name: "ledger", port: ledgerApp.port }],
    });
    proxies.push(callee);
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      workers: 1,
      services: [{ name: "billing", port: billingApp.port }],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
      http_proxy: "127.0.0.1:0",
    });
    proxies.push(caller);
    const up = caller.upstreams.ledger!;
    const req = (head: string, body = "") =>
      rawExchange(up, `${head}\r\nhost: ledger\r\nconnection: close\r\n\r\n${body}`);
    await waitFor(
      "ledger through the upstream",
      async () => (await req("GET /ready HTTP/1.1")).status === 200,
    );

    await t.step("forged identity fields are dropped and the caller named once", async () => {
      // Item 4: forged identity fields are dropped, the verified caller is named once, and
      // x-forwarded-for is one list.
      const forged = await req(
        "GET /who HTTP/1.1\r\nx-forwarded-client-cert: By=spiffe://skein.local/svc/admin;URI=spiffe://skein.local/svc/admin\r\n" +
          "X-Skein-Caller: spiffe://skein.local/svc/admin\r\nx-skein-forwarded-peer: spiffe://skein.local/svc/admin\r\n" +
          "Forwarded: for=6.6.6.6;by=admin\r\nX-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 7.7.7.7",
      );
      assertEquals(forged.status, 200, forged.body);
      const f = receivedFields(forged.body);
      const named = (n: string) => f.filter(([k]) => k === n).map(([, v]) => v);
      assertEquals(named("x-forwarded-client-cert"), [], forged.body);
      assertEquals(named("x-skein-forwarded-peer"), [], forged.body);
      assertEquals(named("forwarded"), [], forged.body);
      assertEquals(named("x-skein-caller"), ["spiffe://skein.local/svc/billing"], forged.body);
      const xff = named("x-forwarded-for");
      assertEquals(xff.length, 1, forged.body);
      assert(/^6\.6\.6\.6, 7\.7\.7\.7, 127\.0\.0\.1, 127\.0\.0\.1$/.test(xff[0]!), forged.body);
    });

    await t.step("Content-Length lists and method overrides", async () => {
      // Item 5, without a policy: a listed Content-Length arrives as one number, and a
      // method-override field never reaches the app.
      const listed = await req("POST /cl HTTP/1.1\r\nContent-Length: 5, 5", "hello");
      assertEquals(listed.status, 200, listed.body);
      const lf = receivedFields(listed.body);
      assertEquals(
        lf.filter(([k]) => k === "content-length"),
        [["content-length", "5"]],
        listed.body,
      );
      assert(listed.body.endsWith("\n\nhello"), listed.body);
      const override = await req(
        "POST /o HTTP/1.1\r\nX-HTTP-Method-Override: DELETE\r\ncontent-length: 0",
      );
      assertEquals(override.status, 200, override.body);
      assert(!/method-override/i.test(override.body), override.body);
    });

    await t.step("absolute-form targets on http_proxy route by the URI", async () => {
      // An absolute-form target on http_proxy goes where its URI says, whatever Host says.
      const abs = await rawExchange(
        caller.httpProxy!,
        "GET http://ledger/abs HTTP/1.1\r\nhost: nosuch\r\nconnection: close\r\n\r\n",
      );
      assertEquals(abs.status, 200, abs.body);
      assert(abs.body.startsWith("GET "), abs.body);
    });

    await t.step("Authorization holds against %3B and method case", async () => {
      // With an Authorization: %3B is refused like %2F, a lower-case method is not the upper-case
      // one allowed, and a deny still catches its method in any case.
      await applyResources(cp.url, [{
        kind: "Authorization",
        service: "ledger",
        default: "deny",
        allow: [{ from: ["billing"], methods: ["GET", "POST"], paths: ["/**"] }],
        deny: [{ from: ["*"], paths: ["/admin/*"] }],
      }]);
      await callee.child.waitLine(/authorization policy applied/);
      await waitFor(
        "the deny rule in force",
        async () => (await req("GET /admin/x HTTP/1.1")).status === 403,
      );
      assertEquals((await req("GET /admin%3bx/y HTTP/1.1")).status, 403);
      assertEquals((await req("GET /admin%3Bx/y HTTP/1.1")).status, 403);
      assertEquals((await req("get /ok HTTP/1.1")).status, 403);
      assertEquals((await req("GET /ok HTTP/1.1")).status, 200);
      assertEquals((await req("delete /ok HTTP/1.1")).status, 403);
    });
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    ledgerApp.close();
    await billingApp.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
