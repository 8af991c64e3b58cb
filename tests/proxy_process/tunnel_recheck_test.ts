/**
 * A tighter `Authorization` ends what it no longer allows even when it is already open
 * (regression: a TCP tunnel, and a WebSocket, opened while allowed kept carrying data after
 * the policy changed to deny its caller): the callee's proxy checks open tunnels and upgraded
 * connections again when policies change, closes those now denied, and audits it.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { applyResources, type ProxyHandle, startControl, startProxy, waitFor } from "./helpers.ts";

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** Reads from `c` until `want` was seen; null when the connection ended first. */
async function readUntil(c: Deno.Conn, want: string): Promise<string | null> {
  let got = "";
  const buf = new Uint8Array(4096);
  while (!got.includes(want)) {
    const n = await c.read(buf).catch(() => null);
    if (n === null) return null;
    got += _dec.decode(buf.subarray(0, n));
  }
  return got;
}

/** Resolves once `c` ends (EOF or reset), reading and dropping whatever still arrives. */
async function ended(c: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(4096);
  while (true) {
    const n = await c.read(buf).catch(() => null);
    if (n === null) return;
  }
}

/** `p`, or a failure naming `what` after a generous `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("a tighter Authorization closes open tunnels and WebSockets it no longer allows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-tunnel-recheck-" });
  const cp = await startControl(dir);
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo:${e.data}`);
      return response;
    }
    return new Response("ledger");
  });
  const proxies: ProxyHandle[] = [];
  let tunnel: Deno.Conn | null = null;
  let ws: WebSocket | null = null;
  try {
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      workers: 1,
      services: [{ name: "ledger", port: app.addr.port }],
    });
    proxies.push(callee);
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      workers: 1,
      // One listener per caller service: a service may have one listener per destination.
      services: [{ name: "billing", port: 1 }, { name: "reports", port: 2 }],
      upstreams: [
        { service: "ledger", listen: "127.0.0.1:0", protocol: "tcp" },
        { service: "ledger", listen: "127.0.0.1:0", caller: "reports" },
      ],
    });
    proxies.push(caller);
    const tcpUp = caller.upstreams.ledger!;
    const httpUp = caller.upstreams["ledger@reports"]!;
    assert(tcpUp !== undefined && httpUp !== undefined, JSON.stringify(caller.upstreams));

    // Open both while no policy applies, and show that they carry data.
    const [th, tp] = [
      tcpUp.slice(0, tcpUp.lastIndexOf(":")),
      tcpUp.slice(tcpUp.lastIndexOf(":") + 1),
    ];
    await waitFor("a tunnel that answers", async () => {
      tunnel?.close();
      tunnel = await Deno.connect({ hostname: th, port: Number(tp) });
      await tunnel.write(_enc.encode("GET / HTTP/1.1\r\nhost: ledger\r\n\r\n"));
      return (await readUntil(tunnel, "ledger")) !== null;
    });
    const t = tunnel as unknown as Deno.Conn;
    await waitFor("a WebSocket that answers", async () => {
      ws?.close();
      const s = new WebSocket(`ws://${httpUp}/ws`);
      ws = s;
      return await new Promise<boolean>((resolve) => {
        s.onopen = () => s.send("hi");
        s.onmessage = (e) => resolve(e.data === "echo:hi");
        s.onerror = () => resolve(false);
        s.onclose = () => resolve(false);
      });
    });
    const socket = ws as unknown as WebSocket;
    const wsClosed = new Promise<void>((resolve) => socket.onclose = () => resolve());
    // Still usable after the first exchange.
    await t.write(_enc.encode("GET /again HTTP/1.1\r\nhost: ledger\r\n\r\n"));
    assert((await readUntil(t, "ledger")) !== null, "the tunnel stopped before the policy changed");

    // Now only payments may call ledger.
    await applyResources(cp.url, [{
      kind: "Authorization",
      service: "ledger",
      default: "deny",
      allow: [{ from: ["payments"] }],
    }]);
    await callee.child.waitLine(/authorization policy applied/);
    await within(ended(t), 30_000, "the tunnel closing");
    await within(wsClosed, 30_000, "the WebSocket closing");
    await callee.child.waitLine(/closing a TCP tunnel the authorization policy no longer allows/);
    await callee.child.waitLine(
      /closing an upgraded connection the authorization policy no longer allows/,
    );
    const audits = callee.child.lines.filter((l) =>
      /component"?[=:]"?audit/.test(l) && /default_deny/.test(l)
    );
    assert(audits.some((l) => /method"?[=:]"?TCP/.test(l)), audits.join("\n"));
    assert(audits.some((l) => /method"?[=:]"?GET/.test(l)), audits.join("\n"));
    // New ones are refused too.
    const again = await Deno.connect({ hostname: th, port: Number(tp) });
    await again.write(_enc.encode("GET / HTTP/1.1\r\nhost: ledger\r\n\r\n"));
    assertEquals(await readUntil(again, "ledger"), null);
    again.close();
  } finally {
    try {
      (tunnel as Deno.Conn | null)?.close();
    } catch {
      // Closed by the proxy.
    }
    (ws as WebSocket | null)?.close();
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    await app.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
