/**
 * CA rotation carried through by the control plane, with real processes and traffic: two
 * rotations in a row started by `POST /v1/ca/rotate` alone (the leader activates and finishes
 * them), while requests flow between proxies over mux sessions, over plain pooled connections
 * and on a fresh client connection each; the callee is cut off from the control plane during
 * the first trust phase (its control URL goes through a relay the test cuts), and a caller is
 * restarted during the second; then traffic goes on until the certificates in use have expired
 * (the callee cuts connections made with them). No request may fail, and the cut-off proxy
 * catches up.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import {
  joinToken,
  type ProxyHandle,
  startControl,
  startProxy,
  waitFor,
} from "../proxy_process/helpers.ts";
import { testFetch, trustRoots } from "../tls_fixture.ts";
import { run } from "./_pki.ts";
import { X509Certificate } from "node:crypto";

/** Bytes the app answers: large enough that responses are in flight across several frames. */
const BODY_BYTES = 48 * 1024;

/** A TCP relay the test can cut (every open connection closed, new ones refused) and restore. */
function relay(targetPort: number) {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let cut = false;
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable);
    } catch {
      // Either side closed: the other goes too.
    }
    for (const c of [from, to]) {
      open.delete(c);
      try {
        c.close();
      } catch {
        // already closed
      }
    }
  };
  const loop = (async () => {
    for await (const c of l) {
      if (cut) {
        c.close();
        continue;
      }
      Deno.connect({ hostname: "127.0.0.1", port: targetPort }).then((t) => {
        open.add(c);
        open.add(t);
        void pipe(c, t);
        void pipe(t, c);
      }, () => c.close());
    }
  })().catch(() => {});
  return {
    port: (l.addr as Deno.NetAddr).port,
    cut() {
      cut = true;
      for (const c of [...open]) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      open.clear();
    },
    restore() {
      cut = false;
    },
    async close() {
      this.cut();
      l.close();
      await loop;
    },
  };
}

/** One request on a fresh TCP connection; throws unless it is a whole 200 of BODY_BYTES. */
async function freshGet(addr: string): Promise<void> {
  const [hostname, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.split(":").pop())];
  const c = await Deno.connect({ hostname, port });
  try {
    await c.write(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`),
    );
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      const n = await c.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const all = new Uint8Array(chunks.reduce((a, x) => a + x.length, 0));
    let o = 0;
    for (const x of chunks) {
      all.set(x, o);
      o += x.length;
    }
    const text = new TextDecoder().decode(all);
    const head = text.slice(0, text.indexOf("\r\n\r\n"));
    if (!head.startsWith("HTTP/1.1 200")) throw new Error(`fresh: ${head.split("\r\n")[0]}`);
    const bodyLen = all.length - (head.length + 4);
    if (bodyLen !== BODY_BYTES) throw new Error(`fresh: truncated, ${bodyLen} of ${BODY_BYTES}`);
  } finally {
    try {
      c.close();
    } catch {
      // closed by the peer
    }
  }
}

/** One request through a pooled (keep-alive) client; throws unless it is a whole 200. */
async function pooledGet(addr: string): Promise<void> {
  const r = await fetch(`http://${addr}/`);
  const body = await r.arrayBuffer();
  if (r.status !== 200) {
    throw new Error(`${r.status} ${new TextDecoder().decode(body.slice(0, 200))}`);
  }
  if (body.byteLength !== BODY_BYTES) {
    throw new Error(`truncated: ${body.byteLength} of ${BODY_BYTES}`);
  }
}

Deno.test("two CA rotations carried through by the leader under traffic drop no request", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-driven-rotation-" });
  // Short proxy certificates (the minimum, 1 minute): renewals happen throughout. The trust
  // phase may wait 5 minutes for a member, far longer than the cut below lasts.
  const cp = await startControl(dir, "cp-1", 0, { proxy_cert_ttl: "1m" }, {
    ca: { trust_wait: "5m", on_stuck: "pause" },
  });
  // The app sends each response in four parts 30 ms apart, so at any moment most requests
  // are in the middle of their response: a connection cut under them shows as a truncation.
  const part = new Uint8Array(BODY_BYTES / 4).fill(120);
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname === "/healthz") return new Response("ok");
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        if (sent > 0) await new Promise((r) => setTimeout(r, 30));
        ctl.enqueue(part);
        if (++sent === 4) ctl.close();
      },
    });
    return new Response(stream, { headers: { "content-length": String(BODY_BYTES) } });
  });
  const cpPort = Number(new URL(cp.url).port);
  const cutter = relay(cpPort);
  const proxies = new Map<string, ProxyHandle>();
  const admin = { authorization: `Bearer ${cp.token}`, "content-type": "application/json" };
  const api = async (method: string, path: string, b?: unknown) => {
    const r = await testFetch(`${cp.url}${path}`, {
      method,
      headers: admin,
      ...(b === undefined ? {} : { body: JSON.stringify(b) }),
    });
    const json = await r.json();
    assertEquals(r.status, 200, `${method} ${path}: ${JSON.stringify(json)}`);
    return json;
  };
  const counts = { mux: 0, plain: 0, fresh: 0 };
  const failures: string[] = [];
  let streaming = true;
  const paused = new Set<string>();
  const loops: Promise<void>[] = [];
  const loop = (proxy: string, kind: keyof typeof counts, fn: (addr: string) => Promise<void>) =>
    loops.push((async () => {
      while (streaming) {
        if (paused.has(proxy)) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        try {
          await fn(proxies.get(proxy)!.upstreams.ledger!);
          counts[kind]++;
        } catch (e) {
          if (!paused.has(proxy)) {
            failures.push(`${new Date().toISOString()} ${kind} via ${proxy}: ${e}`);
          }
        }
      }
    })());
  const phases: string[] = [];
  try {
    // Its control URL is the relay's, which the helper holds no token for: enrol explicitly.
    await Deno.writeTextFile(`${dir}/ledger.token`, (await joinToken(cp.url, "ledger")) + "\n");
    proxies.set(
      "vm-ledger",
      await startProxy(dir, {
        node: "vm-ledger",
        token_file: `${dir}/ledger.token`,
        control: [`https://127.0.0.1:${cutter.port}`],
        workers: 1,
        services: [{ name: "ledger", port: app.addr.port }],
      }),
    );
    // One caller over mux sessions (the default), one with the mux off: plain pooled mTLS.
    proxies.set(
      "vm-web",
      await startProxy(dir, {
        node: "vm-web",
        control: [cp.url],
        workers: 1,
        services: [{ name: "web", port: app.addr.port }],
        upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
      }),
    );
    const shopConfig = {
      node: "vm-shop",
      control: [cp.url],
      workers: 1,
      services: [{ name: "shop", port: app.addr.port }],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
    };
    const shopEnv = { env: { SKEIN_MESH_MUX: "off" } };
    proxies.set("vm-shop", await startProxy(dir, shopConfig, shopEnv));
    for (const name of ["vm-web", "vm-shop"]) {
      await waitFor(`${name} to reach ledger`, async () => {
        await pooledGet(proxies.get(name)!.upstreams.ledger!);
        return true;
      });
    }
    loop("vm-web", "mux", pooledGet);
    loop("vm-web", "mux", pooledGet);
    loop("vm-web", "fresh", freshGet);
    loop("vm-shop", "plain", pooledGet);

    const status = () => api("GET", "/v1/ca/rotation");
    const rotate = async () => {
      const r = await api("POST", "/v1/ca/rotate", {});
      assertEquals(r.ca.rotation.phase, "trust");
      // The test's own client must trust the new root once the control node's leaf moves to it.
      trustRoots((r.ca.roots as { certPem: string }[]).map((x) => x.certPem));
      return r.ca.rotation.newRootId as string;
    };
    const untilFinished = async (label: string, t0: number) => {
      await waitFor(`${label}: activation`, async () => {
        const s = await status();
        return s.rotation?.phase === "activate" || s.rotation === null;
      }, 120_000);
      const t1 = performance.now();
      await waitFor(`${label}: finish`, async () => (await status()).rotation === null, 180_000);
      const t2 = performance.now();
      phases.push(
        `${label}: trust ${((t1 - t0) / 1000).toFixed(1)} s, activate→finish ${
          ((t2 - t1) / 1000).toFixed(1)
        } s`,
      );
    };

    // --- rotation 1: the callee cannot reach the control plane during the trust phase.
    cutter.cut();
    const before1 = { ...counts };
    const t0 = performance.now();
    const root1 = await rotate();
    const stuck = await waitFor("the leader to wait for the cut-off callee only", async () => {
      const s = await status();
      const missing = s.missing as string[];
      return s.rotation?.phase === "trust" && missing.length === 1 &&
          missing[0]!.startsWith("svc/ledger/")
        ? s
        : null;
    }, 30_000);
    assertEquals(stuck.rotation.newRootId, root1);
    // Still waiting a moment later: nothing activates while a member lacks the new root.
    await new Promise((r) => setTimeout(r, 1_500));
    assertEquals((await status()).rotation?.phase, "trust");
    cutter.restore();
    await untilFinished("rotation 1", t0);
    const ca1 = await api("GET", "/v1/ca/roots");
    assertEquals(ca1.active_root_id, root1);
    assertEquals(ca1.roots.length, 1, "the old root is dropped");
    await Deno.writeTextFile(`${dir}/root1.pem`, ca1.roots[0]);
    const v1 = await run("openssl", [
      "verify",
      "-CAfile",
      `${dir}/root1.pem`,
      `${dir}/vm-ledger-data/cert.pem`,
    ]);
    assertEquals(v1.code, 0, `the cut-off callee caught up: ${v1.stdout}`);
    const during1 = Object.values(counts).reduce((a, b) => a + b, 0) -
      Object.values(before1).reduce((a, b) => a + b, 0);

    // --- rotation 2, at once: the no-mux caller restarts during it.
    const before2 = { ...counts };
    const t0b = performance.now();
    const root2 = await rotate();
    paused.add("vm-shop");
    await proxies.get("vm-shop")!.child.stop();
    proxies.set("vm-shop", await startProxy(dir, shopConfig, shopEnv));
    paused.delete("vm-shop");
    await untilFinished("rotation 2", t0b);
    const ca2 = await api("GET", "/v1/ca/roots");
    assertEquals(ca2.active_root_id, root2);
    assertEquals(ca2.roots.length, 1);
    const during2 = Object.values(counts).reduce((a, b) => a + b, 0) -
      Object.values(before2).reduce((a, b) => a + b, 0);

    // Keep the traffic going until the certificates the callers held when rotation 2 ended
    // have expired: the callee closes connections made with them then, so any session or
    // pooled connection still in use with one would cut the calls on it.
    const expiries = await Promise.all(
      ["vm-web", "vm-shop"].map(async (n) => {
        const pem = await Deno.readTextFile(`${dir}/${n}-data/cert.pem`);
        return Date.parse(new X509Certificate(pem).validTo);
      }),
    );
    const lastExpiry = Math.max(...expiries);
    const after = { ...counts };
    await waitFor(
      "the callers' certificates of the end of rotation 2 to expire under traffic",
      () => Date.now() > lastExpiry + 2_000 && counts.plain > after.plain + 20,
      150_000,
    );
    streaming = false;
    await Promise.all(loops);
    console.log(
      `driven rotation: ${during1} requests during rotation 1, ${during2} during rotation 2; ` +
        `${phases.join("; ")}; totals ${JSON.stringify(counts)}`,
    );
    // On failure: every proxy line logged in the 2 s before each failed request.
    const times = failures.map((f) => Date.parse(f.slice(0, 24)));
    const notable = [...proxies].flatMap(([n, p]) =>
      p.child.lines.filter((l) => {
        const t = Date.parse(/ts=(\S+)/.exec(l)?.[1] ?? "");
        return times.some((f) => t <= f && t >= f - 2_000);
      }).map((l) => `${n}: ${l}`)
    );
    assertEquals(
      failures,
      [],
      `requests failed (${JSON.stringify(counts)}); proxy warnings:\n${notable.join("\n")}`,
    );
    for (const k of Object.keys(counts) as (keyof typeof counts)[]) {
      assert(counts[k] > 20, `only ${counts[k]} ${k} requests were made`);
    }
  } finally {
    streaming = false;
    await Promise.all(loops).catch(() => {});
    for (const p of proxies.values()) await p.child.stop();
    await cp.child.stop();
    await cutter.close();
    await app.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
