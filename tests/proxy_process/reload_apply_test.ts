/**
 * SIGHUP on a running `skein proxy` applies proxy.yaml: an added upstream serves, a removed
 * one stops accepting while its in-flight request completes, a changed limit holds for the
 * next request, an invalid file keeps the running configuration, keys that cannot change at
 * run time are named, and a keep-alive connection open across every reload keeps working.
 */
import { assert, assertEquals } from "../assert.ts";
import {
  adminJson,
  type Child,
  get,
  joinToken,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";

const _enc = new TextEncoder();
const _dec = new TextDecoder();

/** An app answering its name, and holding `/slow` until released (it says when one arrived). */
function gatedApp(name: string) {
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (new URL(req.url).pathname === "/slow") {
      arrived.resolve();
      await release.promise;
      return new Response(`${name} slow`);
    }
    return new Response(name);
  });
  return {
    port: server.addr.port,
    arrived: arrived.promise,
    release: () => release.resolve(),
    close: () => server.shutdown(),
  };
}

/** One client connection kept alive across requests (fetch would hide which one it uses). */
class KeepAlive {
  #buf = new Uint8Array(0);
  private constructor(readonly conn: Deno.Conn) {}

  static async open(addr: string): Promise<KeepAlive> {
    const i = addr.lastIndexOf(":");
    return new KeepAlive(
      await Deno.connect({ hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)) }),
    );
  }

  /** Sends a GET on this connection and reads one answer (with a Content-Length). */
  async get(path: string, extra = ""): Promise<{ status: number; body: string }> {
    await this.conn.write(_enc.encode(`GET ${path} HTTP/1.1\r\nhost: x\r\n${extra}\r\n`));
    let end: number;
    while ((end = _dec.decode(this.#buf).indexOf("\r\n\r\n")) < 0) await this.#more();
    const head = _dec.decode(this.#buf.slice(0, end));
    const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1]);
    assert(Number.isInteger(len), `no content-length in ${head}`);
    while (this.#buf.length < end + 4 + len) await this.#more();
    const body = _dec.decode(this.#buf.slice(end + 4, end + 4 + len));
    this.#buf = this.#buf.slice(end + 4 + len);
    return { status: Number(head.split(" ")[1]), body };
  }

  async #more(): Promise<void> {
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.conn.read(chunk);
    if (n === null) throw new Error("connection closed by the proxy");
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
  }
}

/** Sends SIGHUP and waits for the `n`th reload outcome line (reloaded or refused). */
async function reload(child: Child, n: number): Promise<string> {
  Deno.kill(child.proc.pid, "SIGHUP");
  const re = /configuration reload/;
  return await waitFor(`reload ${n}`, () => child.lines.filter((l) => re.test(l))[n - 1], 60_000);
}

/** Where the proxy's admin /config page says `key`'s upstream listener is. */
async function upstreamAddr(p: { admin: string }, key: string): Promise<string | undefined> {
  const c = await adminJson(p as Parameters<typeof adminJson>[0], "/config");
  return (c.addresses as { upstreams: Record<string, string> }).upstreams[key];
}

async function refused(addr: string): Promise<boolean> {
  const i = addr.lastIndexOf(":");
  try {
    const c = await Deno.connect({ hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
    c.close();
    return false;
  } catch {
    return true;
  }
}

Deno.test("proxy SIGHUP applies upstreams and limits without dropping connections", async () => {
  const dir = await Deno.makeTempDir();
  const ledger = gatedApp("ledger");
  const audit = gatedApp("audit");
  const billing = startApp("billing");
  const cp = await startControl(dir);
  const kill: Child[] = [];
  try {
    const callee = await startProxy(dir, {
      node: "vm-callee",
      control: [cp.url],
      workers: 1,
      services: [{ name: "ledger", port: ledger.port }, { name: "audit", port: audit.port }],
    });
    kill.push(callee.child);
    const p = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      services: [{ name: "billing", port: billing.port }],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
    });
    kill.push(p.child);
    const file = `${dir}/vm-billing.yaml`;
    const cfg = JSON.parse(await Deno.readTextFile(file));
    const ledgerAddr = p.upstreams.ledger!;
    await waitFor(
      "ledger through the proxy",
      async () => (await get(ledgerAddr)).body === "ledger",
    );
    const ka = await KeepAlive.open(ledgerAddr);
    assertEquals(await ka.get("/"), { status: 200, body: "ledger" });
    const many = Array.from({ length: 12 }, (_, i) => `x-h${i}: v\r\n`).join("");
    assertEquals((await ka.get("/", many)).status, 200, "12 headers pass the default limit");

    // Add an upstream, tighten a limit, and change a key that needs a restart.
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        ...cfg,
        zone: "z9",
        limits: { max_headers: 10 },
        upstreams: [...cfg.upstreams, { service: "audit", listen: "127.0.0.1:0" }],
      }),
    );
    const first = await reload(p.child, 1);
    assert(first.includes("+upstream:audit"), first);
    assert(first.includes("limits.max_headers=10"), first);
    assert(first.includes("needs_restart=zone"), first);
    const auditAddr = await upstreamAddr(p, "audit");
    assert(auditAddr !== undefined, "the new upstream has an address");
    await waitFor(
      "audit through the new listener",
      async () => (await get(auditAddr)).body === "audit",
    );
    // The keep-alive connection opened before the reload is still served, under the new limit.
    assertEquals(await ka.get("/"), { status: 200, body: "ledger" });
    const ka2 = await KeepAlive.open(ledgerAddr);
    assertEquals((await ka2.get("/", many)).status, 431, "the new max_headers holds");
    ka2.conn.close();

    // Remove audit while a request on it is in flight: the listener closes, the request ends.
    const slow = get(auditAddr, "/slow");
    await audit.arrived;
    await Deno.writeTextFile(file, JSON.stringify({ ...cfg, limits: { max_headers: 10 } }));
    const second = await reload(p.child, 2);
    assert(second.includes("-upstream:audit"), second);
    await waitFor("the audit listener to close", () => refused(auditAddr));
    audit.release();
    assertEquals(await slow, { status: 200, body: "audit slow", headers: (await slow).headers });
    assertEquals(await upstreamAddr(p, "audit"), undefined);

    // An invalid file is refused; the running configuration keeps serving.
    await Deno.writeTextFile(
      file,
      JSON.stringify({ ...cfg, upstreams: [{ service: "ledger", listen: "nowhere" }] }),
    );
    const third = await reload(p.child, 3);
    assert(third.includes("configuration reload refused"), third);
    assert(third.includes("upstreams"), third);
    assertEquals(await ka.get("/"), { status: 200, body: "ledger" });
    assertEquals((await get(ledgerAddr)).body, "ledger");
    ka.conn.close();
  } finally {
    for (const c of kill.reverse()) await c.stop();
    await cp.child.stop();
    audit.release();
    ledger.release();
    await Promise.all([ledger.close(), audit.close(), billing.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proxy SIGHUP adds a local service (enrolled with its token) and removes one", async () => {
  const dir = await Deno.makeTempDir();
  const ledger = gatedApp("ledger");
  const audit = gatedApp("audit");
  const billing = startApp("billing");
  const cp = await startControl(dir);
  const kill: Child[] = [];
  try {
    // One token for the service it starts with, one for the service a reload adds.
    const tokenFile = `${dir}/callee.token`;
    const tokens = [await joinToken(cp.url, "ledger"), await joinToken(cp.url, "audit")];
    await Deno.writeTextFile(tokenFile, tokens.join("\n") + "\n", { mode: 0o600 });
    const callee = await startProxy(dir, {
      node: "vm-callee",
      control: [cp.url],
      token_file: tokenFile,
      services: [{ name: "ledger", port: ledger.port }],
    });
    kill.push(callee.child);
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      workers: 1,
      services: [{ name: "billing", port: billing.port }],
      upstreams: [
        { service: "ledger", listen: "127.0.0.1:0" },
        { service: "audit", listen: "127.0.0.1:0" },
      ],
    });
    kill.push(caller.child);
    const ledgerAddr = caller.upstreams.ledger!;
    const auditAddr = caller.upstreams.audit!;
    await waitFor("ledger through the mesh", async () => (await get(ledgerAddr)).body === "ledger");
    assert((await get(auditAddr)).status >= 500, "no audit instance yet");

    const file = `${dir}/vm-callee.yaml`;
    const cfg = JSON.parse(await Deno.readTextFile(file));
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        ...cfg,
        services: [...cfg.services, { name: "audit", port: audit.port }],
      }),
    );
    const first = await reload(callee.child, 1);
    assert(first.includes("+service:audit"), first);
    await callee.child.waitLine(/certificate obtained.*svc\/audit/);
    // Registered, reachable through the caller's mesh hop with audit's own certificate.
    await waitFor("audit through the mesh", async () => (await get(auditAddr)).body === "audit");
    assertEquals((await get(ledgerAddr)).body, "ledger");

    // A service without a token is refused with the reason; the rest of the file applies.
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        ...cfg,
        services: [...cfg.services, { name: "ranker", port: audit.port }],
      }),
    );
    const second = await reload(callee.child, 2);
    assert(second.includes("refused=") && second.includes("service ranker"), second);
    assert(second.includes("-service:audit"), second);
    await waitFor("audit gone from the mesh", async () => (await get(auditAddr)).status >= 500);
    assertEquals((await get(ledgerAddr)).body, "ledger");
    const cfgPage = await adminJson(callee, "/config");
    const running = (cfgPage.config as { services: { name: string }[] }).services;
    assertEquals(running.map((s) => s.name), ["ledger"]);
  } finally {
    for (const c of kill.reverse()) await c.stop();
    await cp.child.stop();
    audit.release();
    ledger.release();
    await Promise.all([ledger.close(), audit.close(), billing.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});
