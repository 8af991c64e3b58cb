/**
 * Certificate issuance through a real 3-node `skein control` cluster: a join token made with
 * `skein ctl tokens create`, a real `skein proxy` that redeems it, openssl checks of the leaf,
 * refused reuse and expiry, no CA key in any answer or log, and the same CA after a restart
 * of the whole cluster (replicated and snapshotted).
 * @module
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { ProcessCluster, request, sleep, waitFor } from "../control_process/cluster.ts";
import { createJoinToken, spawnSkein } from "../skein_cli.ts";
import { createKeyAndCsr } from "../../mesh/identity/mod.ts";
import { sharedSeed, testFetch } from "../tls_fixture.ts";

const TD = "skein.local";
/** Longest a proxy may take to enrol and listen. */
const PROXY_START_TIMEOUT_MS = 60_000;

interface ProxyRun {
  /** Exit code when the proxy ended by itself, else null (it was listening). */
  code: number | null;
  stderr: string;
}

/** Runs `skein proxy` until it listens (then SIGTERM) or exits by itself. */
async function runProxyOnce(configPath: string): Promise<ProxyRun> {
  const child = spawnSkein(["proxy", "--config", configPath]);
  const dec = new TextDecoder();
  let stderr = "";
  const reader = child.stderr.getReader();
  const status = child.status;
  child.stdout.cancel().catch(() => {});
  let listening = false;
  const deadline = Date.now() + PROXY_START_TIMEOUT_MS;
  try {
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += dec.decode(value, { stream: true });
      if (/proxy listening/.test(stderr)) {
        listening = true;
        break;
      }
    }
  } finally {
    if (listening || Date.now() >= deadline) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    // Drain the rest so the child never blocks on a full pipe.
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += dec.decode(value, { stream: true });
    }
  }
  const st = await status;
  return { code: listening ? null : st.code, stderr };
}

async function writeProxyConfig(
  dir: string,
  node: string,
  controls: string[],
  tokenFile: string,
): Promise<string> {
  const path = `${dir}/${node}.yaml`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      node,
      control: controls,
      token_file: tokenFile,
      ca_file: (await sharedSeed()).certFile,
      data_dir: `${dir}/${node}-data`,
      admin: "127.0.0.1:0",
      inbound: "127.0.0.1:0",
      heartbeat_interval: "200ms",
      drain_timeout: "1s",
    }),
  );
  return path;
}

async function openssl(args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

/** The cluster's bootstrap admin token, read from its file once the nodes accept it. */
let adminToken = "";

async function createToken(api: string, service: string, ttl: string): Promise<string> {
  const token = await createJoinToken(api, adminToken, service, ttl);
  assertMatch(token, /^skn_join_/);
  return token;
}

async function roots(api: string): Promise<string[]> {
  const r = await waitFor("the CA roots", 30_000, async () => {
    const x = await request(`${api}/v1/ca/roots`);
    return x.status === 200 ? x : undefined;
  });
  assertEquals(r.json?.trust_domain, TD);
  return r.json!.roots as string[];
}

/** Every control node's whole stderr log. */
async function controlLogs(c: ProcessCluster): Promise<string> {
  let all = "";
  for (const id of c.ids()) {
    all += await Deno.readTextFile(`${c.baseDir}/${id}/stderr.log`).catch(() => "");
  }
  return all;
}

Deno.test("a proxy enrols with a ctl join token; reuse and expiry are refused; the CA survives a cluster restart", async () => {
  const c = await ProcessCluster.create({ size: 3, snapshotEvery: 10 });
  const dir = await Deno.makeTempDir({ prefix: "skein-enroll-" });
  const secrets: string[] = [];
  try {
    await c.startAll();
    const leader = await c.waitLeader();
    const follower = c.ids().find((id) => id !== leader)!;
    const apis = c.ids().map((id) => c.api(id));
    for (const id of c.ids()) adminToken = await c.waitAdminToken(c.ids()[0]!, id);
    secrets.push(adminToken);
    // The leader bootstraps the CA; a follower serves the replicated roots.
    const bundle = await roots(c.api(follower));
    assertEquals(bundle.length, 1);
    await Deno.writeTextFile(`${dir}/roots.pem`, bundle.join(""));

    // --- a proxy obtains its certificate with a single-use token made through a follower.
    const token = await createToken(c.api(follower), "payments", "1h");
    secrets.push(token);
    await Deno.writeTextFile(`${dir}/payments.token`, token + "\n");
    const cfg = await writeProxyConfig(dir, "vm-1", apis, `${dir}/payments.token`);
    const first = await runProxyOnce(cfg);
    assertEquals(first.code, null, `proxy did not start:\n${first.stderr}`);
    assertMatch(first.stderr, /certificate obtained.*spiffe:\/\/skein\.local\/svc\/payments/);
    const certPath = `${dir}/vm-1-data/cert.pem`;
    const text = await openssl(["x509", "-in", certPath, "-noout", "-text"]);
    assertEquals(text.code, 0, text.out);
    assertMatch(text.out, /URI:spiffe:\/\/skein\.local\/svc\/payments/);
    const verify = await openssl(["verify", "-CAfile", `${dir}/roots.pem`, certPath]);
    assertEquals(verify.code, 0, verify.out);
    assertMatch(verify.out, /: OK/);
    assertEquals((await Deno.stat(`${dir}/vm-1-data/key.pem`)).mode! & 0o777, 0o600);

    // --- a restart of that proxy uses the stored identity (the token is spent).
    const again = await runProxyOnce(cfg);
    assertEquals(again.code, null, again.stderr);
    assertMatch(again.stderr, /certificate loaded.*svc\/payments/);

    // --- a second proxy with the same single-use token is refused, clearly, and exits 1.
    const cfg2 = await writeProxyConfig(dir, "vm-2", apis, `${dir}/payments.token`);
    const reuse = await runProxyOnce(cfg2);
    assertEquals(reuse.code, 1, reuse.stderr);
    assertMatch(reuse.stderr, /403 join_token_used_up/);

    // --- no token file and no identity: the proxy refuses to start, saying why.
    const cfg3 = await writeProxyConfig(dir, "vm-3", apis, `${dir}/absent.token`);
    const plain = await runProxyOnce(cfg3);
    assertEquals(plain.code, 1, plain.stderr);
    assertMatch(plain.stderr, /no identity: give the proxy a join token/);

    // --- an expired token is refused.
    const short = await createToken(apis[0]!, "ledger", "1s");
    secrets.push(short);
    await sleep(1500);
    const { csrPem } = await createKeyAndCsr({ service: "ledger", trustDomain: TD });
    const expired = await request(`${c.api(leader)}/v1/ca/sign`, "POST", {
      csr: csrPem,
      token: short,
    });
    assertEquals(expired.status, 403);
    assertEquals((expired.json?.error as { code: string }).code, "join_token_expired");

    // Enough writes to cross snapshot_every, so the restart below restores from a snapshot.
    for (let i = 0; i < 10; i++) secrets.push(await createToken(apis[i % 3]!, `svc${i}`, "1h"));

    // --- no API answer and no log line carries the CA key (or a token secret).
    for (const api of apis) {
      for (
        const path of ["/v1/ca/roots", "/v1/catalog", "/v1/resources", "/v1/services", "/v1/tokens"]
      ) {
        const res = await testFetch(`${api}${path}`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        assertEquals(res.status, 200, `${api}${path}`);
        const body = await res.text();
        assert(!body.includes("PRIVATE KEY"), `${api}${path} leaks a private key`);
        for (const s of secrets) assert(!body.includes(s), `${api}${path} leaks a token`);
      }
    }
    let logs = await controlLogs(c);
    assert(logs.includes("certificate authority created"), "the leader logged the bootstrap");
    assert(!logs.includes("PRIVATE KEY"), "a control log line holds a private key");
    for (const s of secrets) assert(!logs.includes(s), "a control log line holds a token");
    for (const r of [first, again, reuse, plain]) {
      assert(!r.stderr.includes("PRIVATE KEY") && !r.stderr.includes(token), "proxy log leaks");
    }

    // --- restart every node: same CA, and the spent token stays spent.
    await c.waitConverged(30_000);
    for (const id of c.ids()) await c.signal(id, "SIGTERM");
    await c.startAll();
    const leader2 = await c.waitLeader();
    for (const api of apis) assertEquals(await roots(api), bundle);
    const { csrPem: csr2 } = await createKeyAndCsr({ service: "payments", trustDomain: TD });
    const spent = await request(`${c.api(leader2)}/v1/ca/sign`, "POST", { csr: csr2, token });
    assertEquals(spent.status, 403);
    assertEquals((spent.json?.error as { code: string }).code, "join_token_used_up");
    logs = await controlLogs(c);
    assertEquals(
      logs.split("certificate authority created").length - 1,
      1,
      "exactly one CA was ever created",
    );
    assert(logs.includes("snapshot saved"), "the run crossed snapshot_every");
  } catch (e) {
    throw new Error(`${e}\n${c.logs()}`);
  } finally {
    await c.destroy();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
