/**
 * Zero trust with real processes and outside clients: the control API and Raft port of a real
 * `skein control` refuse what has no valid mesh certificate; a proxy's certificate renewal and a
 * full CA rotation under a steady request stream drop no request; a revoked caller is cut off.
 * @module
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { ProcessCluster, request } from "../control_process/cluster.ts";
import {
  type App,
  get,
  type ProxyHandle,
  revokeService,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "../proxy_process/helpers.ts";
import { meshClient, sharedSeed, testFetch, trustRoots } from "../tls_fixture.ts";
import { leaf, run, sClientGet, testCa, writePair } from "./_pki.ts";

const HOUR_MS = 3_600_000;

Deno.test("a real control node's API and Raft port refuse clients without a valid mesh certificate", async () => {
  const c = await ProcessCluster.create({ size: 3 });
  const dir = await Deno.makeTempDir({ prefix: "skein-zt-ports-" });
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const spec = c.node(leader).spec;
    const api = `127.0.0.1:${spec.apiPort}`;
    const raft = `127.0.0.1:${spec.raftPort}`;
    const seed = await sharedSeed();

    // A revoked identity: its certificate is still within its lifetime.
    const rev = await request(`${c.api(leader)}/v1/ca/revoke`, "POST", { service: "mallory" });
    assertEquals(rev.status, 200, JSON.stringify(rev.json));
    await c.waitConverged();

    const other = await testCa();
    const clients: Record<string, string[]> = {
      "no certificate": [],
      "another CA's certificate": Object.values(
        await writePair(dir, "foreign", await leaf(other, "billing")),
      ).flatMap((f, i) => [i === 0 ? "-cert" : "-key", f]),
      "an expired certificate": Object.values(
        await writePair(
          dir,
          "expired",
          await meshClient("billing", { now: Date.now() - 2 * HOUR_MS, ttlMs: HOUR_MS }),
        ),
      ).flatMap((f, i) => [i === 0 ? "-cert" : "-key", f]),
      "a revoked identity": Object.values(
        await writePair(dir, "revoked", await meshClient("mallory")),
      ).flatMap((f, i) => [i === 0 ? "-cert" : "-key", f]),
    };
    const ca = ["-CAfile", seed.certFile];

    // The API: a protected route answers only a valid mesh certificate (or a bearer token).
    const valid = Object.values(await writePair(dir, "valid", await meshClient("billing")))
      .flatMap((f, i) => [i === 0 ? "-cert" : "-key", f]);
    assertMatch(await sClientGet(api, [...ca, ...valid], "/v1/catalog"), /HTTP\/1\.1 200/);
    for (const [name, args] of Object.entries(clients)) {
      const out = await sClientGet(api, [...ca, ...args], "/v1/catalog");
      assert(!/HTTP\/1\.1 200/.test(out), `API answered 200 to ${name}: ${out.slice(0, 200)}`);
      if (name === "no certificate") {
        // Operators come without a certificate; without a token they get 401 and nothing else.
        assertMatch(out, /HTTP\/1\.1 401/);
      } else {
        assert(!/HTTP\/1\.1/.test(out), `API answered HTTP to ${name}: ${out.slice(0, 200)}`);
      }
    }

    // The Raft port: nothing but control identities gets past the handshake; the peer stays up.
    for (const [name, args] of Object.entries({ ...clients, "a valid proxy certificate": valid })) {
      const r = await run("openssl", [
        "s_client",
        "-connect",
        raft,
        "-tls1_3",
        "-quiet",
        ...ca,
        ...args,
      ], "hello\n");
      assertEquals(r.stdout, "", `raft port sent bytes to ${name}`);
    }
    // Plaintext to either port gets no HTTP answer.
    for (const addr of [api, raft]) {
      const r = await run("curl", ["-sS", "--max-time", "5", `http://${addr}/v1/health`]);
      assert(r.code !== 0, `plaintext curl to ${addr} must fail: ${r.stdout}`);
      assert(!r.stdout.includes("leader"), r.stdout);
    }
    // The cluster is unharmed and still commits.
    assertEquals((await c.register(leader, "after", "a")).status, 201);
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("renewal and a CA rotation under a steady request stream drop nothing; a revoked caller is cut off", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-zt-rotate-" });
  // Short proxy certificates (the minimum, 1 minute), so renewal happens during the test.
  const cp = await startControl(dir, "cp-1", 0, { proxy_cert_ttl: "1m" });
  const app: App = startApp("ledger");
  const billingApp: App = startApp("billing");
  const proxies: ProxyHandle[] = [];
  const admin = { authorization: `Bearer ${cp.token}`, "content-type": "application/json" };
  const post = async (path: string, body: unknown) => {
    const r = await testFetch(`${cp.url}${path}`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify(body),
    });
    const json = await r.json();
    assertEquals(r.status, 200, `${path}: ${JSON.stringify(json)}`);
    return json;
  };
  let ok = 0;
  const failures: string[] = [];
  let streaming = true;
  let stream: Promise<void> = Promise.resolve();
  try {
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      workers: 1,
      services: [{ name: "ledger", port: app.port }],
    });
    proxies.push(callee);
    const caller = await startProxy(dir, {
      node: "vm-billing",
      control: [cp.url],
      workers: 1,
      services: [{ name: "billing", port: billingApp.port }],
      upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
    });
    proxies.push(caller);
    await waitFor("the caller to reach ledger", async () => {
      return (await get(caller.upstreams.ledger!)).status === 200;
    });

    // A steady stream through both proxies, four requests in flight, for the whole test.
    stream = Promise.all(Array.from({ length: 4 }, async () => {
      while (streaming) {
        try {
          const r = await get(caller.upstreams.ledger!);
          if (r.status === 200) ok++;
          else failures.push(`${r.status} ${r.body.slice(0, 200)}`);
        } catch (e) {
          failures.push(String(e));
        }
      }
    })).then(() => {});

    // --- rotation, step 1: the new root is trusted everywhere before it signs anything.
    const rotated = await post("/v1/ca/rotate", { activate: false });
    const newRoot = (rotated.ca.roots as { id: string; certPem: string }[])
      .find((r) => r.id !== rotated.ca.activeRootId)!;
    trustRoots([newRoot.certPem]);
    for (const p of proxies) await p.child.waitLine(/trust bundle updated.*roots=2/, 20_000);

    // --- step 2: the new root signs; the control node's own certificate moves to it.
    await post("/v1/ca/activate", { root_id: newRoot.id });
    await Deno.writeTextFile(`${dir}/new-root.pem`, newRoot.certPem);

    // --- each proxy renews on schedule (two thirds of one minute), now from the new root.
    for (const p of proxies) await p.child.waitLine(/certificate renewed/, 90_000);
    for (const node of ["vm-ledger", "vm-billing"]) {
      const v = await run("openssl", [
        "verify",
        "-CAfile",
        `${dir}/new-root.pem`,
        `${dir}/${node}-data/cert.pem`,
      ]);
      assertEquals(v.code, 0, `${node}'s renewed certificate is from the new root: ${v.stdout}`);
    }

    // --- step 3: the old root is dropped; traffic carries on.
    await post("/v1/ca/finish", {});
    for (const p of proxies) await p.child.waitLine(/trust bundle updated.*roots=1/, 20_000);
    const before = ok;
    await waitFor("more requests after the rotation", () => ok > before + 50);

    streaming = false;
    await stream;
    assertEquals(failures, [], `requests failed during renewal/rotation (${ok} ok)`);
    assert(ok > 100, `only ${ok} requests were sent`);

    // --- revocation reaches the callee: the billing identity is refused from then on.
    await post("/v1/ca/revoke", { service: "billing", reason: "test" });
    await waitFor("the revoked caller to be refused", async () => {
      const r = await get(caller.upstreams.ledger!);
      return r.status !== 200;
    }, 15_000);
    const hits = app.hits;
    for (let i = 0; i < 5; i++) {
      assert((await get(caller.upstreams.ledger!)).status !== 200, "a revoked caller got through");
    }
    assertEquals(app.hits, hits, "no request of the revoked caller reached the app");
  } finally {
    streaming = false;
    await stream.catch(() => {});
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    await app.close();
    await billingApp.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a real proxy's inbound refuses expired, revoked and foreign certificates and plaintext", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-zt-inbound-" });
  const cp = await startControl(dir);
  const app: App = startApp("ledger");
  let callee: ProxyHandle | null = null;
  try {
    callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      services: [{ name: "ledger", port: app.port }],
    });
    // Revoke an identity and wait until the proxy has the list (the catalog carries it).
    await revokeService(cp, "mallory");
    const seed = await sharedSeed();
    const pair = async (name: string, m: { certPem: string; keyPem: string }) => {
      const p = await writePair(dir, name, m);
      return ["-cert", p.cert, "-key", p.key];
    };
    const valid = await pair("valid", await meshClient("billing"));
    // The valid client proves the port answers, so the refusals below are real refusals.
    assertMatch(await sClientGet(callee.inbound, ["-CAfile", seed.certFile, ...valid], "/"), /200/);
    const clients: Record<string, string[]> = {
      "no certificate": [],
      "another CA's certificate": await pair("foreign", await leaf(await testCa(), "billing")),
      "an expired certificate": await pair(
        "expired",
        await meshClient("billing", { now: Date.now() - 2 * HOUR_MS, ttlMs: HOUR_MS }),
      ),
      "a revoked identity": await pair("revoked", await meshClient("mallory")),
    };
    await waitFor("the revocation to reach the proxy", async () => {
      const out = await sClientGet(
        callee!.inbound,
        ["-CAfile", seed.certFile, ...clients["a revoked identity"]!],
        "/",
      );
      return !/HTTP\/1\.1/.test(out);
    }, 15_000);
    const hits = app.hits;
    for (const [name, args] of Object.entries(clients)) {
      const out = await sClientGet(callee.inbound, ["-CAfile", seed.certFile, ...args], "/");
      assert(!/HTTP\/1\.1/.test(out), `the inbound answered ${name}: ${out.slice(0, 200)}`);
    }
    const plain = await run("curl", ["-sS", "--max-time", "5", `http://${callee.inbound}/`]);
    assert(plain.code !== 0, `plaintext curl must fail: ${plain.stdout}`);
    assertEquals(app.hits, hits, "no refused client reached the app");
  } finally {
    await callee?.child.stop();
    await cp.child.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
