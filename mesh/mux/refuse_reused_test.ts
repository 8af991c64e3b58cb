/**
 * A mux stream the pool reuses for a second request: when routing turns that request down as
 * "reached no app" (overloaded, no endpoint), the stream is refused so the calling proxy
 * retries elsewhere, whatever the status of the first exchange on the stream was.
 * @module
 */
import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { HttpForwarder, ProxyError, type Router, TlsListener } from "../forward/mod.ts";
import { staticRouter } from "../../tests/mesh_hotpath/static_router.ts";
import { MuxSession } from "./session.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Reads one response with a content-length body from `c`. */
async function readResponse(c: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(4096);
  for (;;) {
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const len = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (text.length >= end + 4 + len) return text;
    }
    const n = await c.read(buf);
    if (n === null) return text;
    text += dec.decode(buf.subarray(0, n));
  }
}

Deno.test("a router refusal on a reused mux stream refuses the stream instead of answering 503", async () => {
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    return new Response("ok");
  });
  const ok = staticRouter({
    endpoints: [{ key: "app", hostname: "127.0.0.1", port: backend.addr.port }],
  });
  let calls = 0;
  const router: Router = {
    route(head, listener, client) {
      return calls++ === 0
        ? ok.route(head, listener, client)
        : new ProxyError(503, "overloaded", "the app's limits are reached");
    },
  };
  const muxPort = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const streams = new TlsListener(muxPort.addr as Deno.NetAddr, () => {});
  const served: MuxSession[] = [];
  const accepting = (async () => {
    for await (const c of muxPort) {
      served.push(
        new MuxSession(c, { role: "server", peerIdentity: null, onStream: (s) => streams.push(s) }),
      );
    }
  })();
  const callee = new HttpForwarder(streams, {
    node: "callee",
    listener: { name: "inbound", protocol: "http" },
    router,
    logger: nullLogger,
  });
  const tcp = await Deno.connect({
    hostname: "127.0.0.1",
    port: (muxPort.addr as Deno.NetAddr).port,
  });
  const client = new MuxSession(tcp, { role: "client", peerIdentity: null });
  try {
    const s = client.open();
    await s.write(enc.encode("GET /a HTTP/1.1\r\nhost: app\r\n\r\n"));
    assertMatch(await readResponse(s), /^HTTP\/1\.1 200 [^]*ok$/);
    await s.write(enc.encode("GET /b HTTP/1.1\r\nhost: app\r\n\r\n"));
    let got: string;
    try {
      got = await readResponse(s);
    } catch (e) {
      got = `${(e as Error).name}: ${(e as Error).message}`;
    }
    assertEquals(got, "ConnectionRefused: stream refused by the callee");
    assertEquals(callee.stats().refused, 1);
  } finally {
    client.close();
    await callee.close();
    for (const s of served) s.close();
    muxPort.close();
    await accepting.catch(() => {});
    await backend.shutdown();
  }
});
