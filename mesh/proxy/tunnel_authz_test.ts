/**
 * A TCP tunnel reaches exactly the local service the router authorized, whatever else the
 * caller's upgrade head says (regression: the bridge used to re-read the destination from the
 * head with a regex, which a U+2028 inside another header's value could fool).
 */
import { assertEquals, assertMatch } from "../../tests/assert.ts";
import { nullLogger } from "../../common/log.ts";
import { Registry } from "../../common/metrics.ts";
import { ProxyMetrics } from "../observe/proxy_metrics.ts";
import { HttpForwarder, type Router } from "../forward/mod.ts";
import { INBOUND_LISTENER, MeshRouter } from "./router.ts";
import { SharedLimits } from "../resilience/shared_limits.ts";
import { TunnelBridge } from "../tcp/mod.ts";
import { prepareCatalog } from "../discovery/mod.ts";

/** A TCP app that writes `tag` to every connection and closes it. */
function tagApp(tag: string): Deno.Listener {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of l) {
      await c.write(new TextEncoder().encode(tag)).catch(() => 0);
      c.close();
    }
  })();
  return l;
}

/** Whether `text` holds a whole answer: an app's tag, or a complete non-101 response. */
function complete(text: string): boolean {
  if (text.endsWith("-APP")) return true;
  const end = text.indexOf("\r\n\r\n");
  if (end < 0 || text.startsWith("HTTP/1.1 101")) return false;
  const len = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
  return text.length >= end + 4 + len;
}

/** Sends `bytes` and returns what comes back, once complete or when the peer closes. */
async function exchange(port: number, bytes: Uint8Array): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  await c.write(bytes);
  let text = "";
  const buf = new Uint8Array(4096);
  try {
    while (!complete(text)) {
      const n = await c.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch {
    // Reset: what arrived is the answer.
  }
  try {
    c.close();
  } catch {
    // Closed already.
  }
  return text;
}

const enc = (s: string) => new TextEncoder().encode(s);
const LS = new Uint8Array([0xe2, 0x80, 0xa8]); // U+2028 LINE SEPARATOR, legal obs-text bytes

Deno.test("a tunnel goes to the service authorized, not to one named again inside its head", async () => {
  const open = tagApp("OPEN-APP");
  const secret = tagApp("SECRET-APP");
  const locals = [
    { name: "open", port: (open.addr as Deno.NetAddr).port },
    { name: "secret", port: (secret.addr as Deno.NetAddr).port },
  ];
  const bridge = new TunnelBridge(new Map(locals.map((l) => [l.name, l.port])), nullLogger);
  const router = new MeshRouter({
    zone: "",
    now: () => performance.now(),
    random: Math.random,
    metrics: new ProxyMetrics(new Registry()),
    logger: nullLogger,
    source: "open",
    limits: new SharedLimits(),
    upstreams: [],
    locals,
    tunnelPort: (s) => bridge.portFor(s),
    trustDomain: "skein.local",
  });
  router.applyCatalog(prepareCatalog({
    index: 1,
    services: {},
    trust: { roots: [], revoked: [] },
    resources: [{ kind: "Authorization", service: "secret", default: "deny" }],
  }, nullLogger));
  // The caller a verified mTLS handshake would have given.
  const asBilling: Router = {
    route(head, listener, client) {
      return router.route(head, listener, {
        ...client,
        identity: "spiffe://skein.local/svc/billing",
      });
    },
  };
  const inbound = new HttpForwarder(Deno.listen({ hostname: "127.0.0.1", port: 0 }), {
    node: "vm",
    listener: { name: INBOUND_LISTENER, protocol: "http" },
    router: asBilling,
    logger: nullLogger,
  });
  const upgrade = "connection: upgrade\r\nupgrade: skein-tcp\r\n\r\n";
  try {
    const denied = await exchange(
      inbound.addr.port,
      enc(`GET / HTTP/1.1\r\nhost: secret\r\nx-skein-destination: secret\r\n${upgrade}`),
    );
    assertMatch(denied, /^HTTP\/1\.1 403 /);
    const open1 = await exchange(
      inbound.addr.port,
      enc(`GET / HTTP/1.1\r\nhost: open\r\nx-skein-destination: open\r\n${upgrade}`),
    );
    assertMatch(open1, /^HTTP\/1\.1 101 [^]*OPEN-APP$/);
    // A second destination line hidden in a header value after U+2028: one header to the HTTP
    // parser, which authorizes "open"; the tunnel must lead to open's app too.
    const hidden = new Uint8Array([
      ...enc("GET / HTTP/1.1\r\nhost: open\r\nx-note: a"),
      ...LS,
      ...enc(`x-skein-destination: secret\r\nx-skein-destination: open\r\n${upgrade}`),
    ]);
    const r = await exchange(inbound.addr.port, hidden);
    assertEquals(r.includes("SECRET-APP"), false, r);
    assertMatch(r, /OPEN-APP$/);
    // A service the proxy does not front has no bridge port.
    assertEquals(bridge.portFor("ledger"), null);
  } finally {
    await inbound.close();
    await bridge.close();
    open.close();
    secret.close();
  }
});
