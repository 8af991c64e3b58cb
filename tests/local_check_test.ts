/** `skein proxy --check` and `skein control --check`: the local half, run as a user would. */
import { assert, assertEquals } from "./assert.ts";
import { runSkein } from "./skein_cli.ts";
import { sharedSeed } from "./tls_fixture.ts";
import { startControl } from "./proxy_process/helpers.ts";

Deno.test("proxy --check finds a world-readable token and a busy port, then passes", async () => {
  const dir = await Deno.makeTempDir();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const cp = await startControl(dir);
  try {
    const seed = await sharedSeed();
    await Deno.writeTextFile(`${dir}/join.token`, "skn_join_x\n", { mode: 0o644 });
    await Deno.chmod(`${dir}/join.token`, 0o644);
    const cfg = (admin: string) =>
      JSON.stringify({
        node: "vm-1",
        control: [cp.url],
        ca_file: seed.certFile,
        token_file: `${dir}/join.token`,
        data_dir: `${dir}/vm-1`,
        admin,
        inbound: "127.0.0.1:0",
      });
    const port = (busy.addr as Deno.NetAddr).port;
    await Deno.writeTextFile(`${dir}/proxy.yaml`, cfg(`127.0.0.1:${port}`));
    const bad = await runSkein(["proxy", "--check", "--config", `${dir}/proxy.yaml`]);
    assertEquals(bad.code, 1, bad.stdout + bad.stderr);
    const problems = bad.stdout.split("\n").filter((l) => l.startsWith("problem:"));
    assertEquals(problems.length, 2, bad.stdout);
    assert(problems[0]!.includes("token_file") && problems[0]!.includes("chmod 600"), bad.stdout);
    assert(problems[1]!.includes(`admin 127.0.0.1:${port} cannot be bound`), bad.stdout);
    assert(bad.stdout.includes(`ok: control ${cp.url} answers`), bad.stdout);

    await Deno.chmod(`${dir}/join.token`, 0o600);
    await Deno.writeTextFile(`${dir}/proxy.yaml`, cfg("127.0.0.1:0"));
    const good = await runSkein(["proxy", "--check", "--config", `${dir}/proxy.yaml`]);
    assertEquals(good.code, 0, good.stdout + good.stderr);
    assert(!good.stdout.includes("problem:"), good.stdout);
  } finally {
    busy.close();
    await cp.child.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control --check names a raft peer it cannot reach and a bad config exits 2", async () => {
  const dir = await Deno.makeTempDir();
  // Port 1 (tcpmux): nothing listens there, and no test can be handed it as an ephemeral port.
  const gonePort = 1;
  try {
    const seed = await sharedSeed();
    await Deno.writeTextFile(
      `${dir}/control.yaml`,
      JSON.stringify({
        node: "cp-1",
        data_dir: `${dir}/cp-1`,
        api: "127.0.0.1:0",
        raft: "127.0.0.1:0",
        peers: ["cp-1=127.0.0.1:7401", `cp-2=127.0.0.1:${gonePort}`],
        bootstrap_token_file: `${dir}/admin.token`,
        tls: { ca_cert_file: seed.certFile, ca_key_file: seed.keyFile },
      }),
    );
    const r = await runSkein(["control", "--check", "--config", `${dir}/control.yaml`]);
    assertEquals(r.code, 1, r.stdout + r.stderr);
    assert(r.stdout.includes(`problem: raft peer cp-2 127.0.0.1:${gonePort} cannot be reached`));
    assert(r.stdout.includes("ok: data_dir"), r.stdout);
    await Deno.writeTextFile(`${dir}/bad.yaml`, "node: cp-1\nraft_tuning: {heartbeat: fast}\n");
    const bad = await runSkein(["control", "--check", "--config", `${dir}/bad.yaml`]);
    assertEquals(bad.code, 2, bad.stdout + bad.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control --check with an offline-root seed wants the intermediate pair and no root key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const made = await runSkein([
      "ca",
      "create",
      "--offline-root",
      `${dir}/root`,
      "--out",
      `${dir}/seed`,
    ]);
    assertEquals(made.code, 0, made.stderr);
    await Deno.writeTextFile(
      `${dir}/control.yaml`,
      JSON.stringify({
        node: "cp-1",
        data_dir: `${dir}/cp-1`,
        api: "127.0.0.1:0",
        raft: "127.0.0.1:0",
        bootstrap_token_file: `${dir}/admin.token`,
        tls: { ca_cert_file: `${dir}/seed/ca.pem`, ca_key_file: `${dir}/seed/ca.key` },
      }),
    );
    const check = () => runSkein(["control", "--check", "--config", `${dir}/control.yaml`]);
    const good = await check();
    assertEquals(good.code, 0, good.stdout + good.stderr);
    assert(good.stdout.includes("ok: tls.intermediate_key_file"), good.stdout);
    assert(!good.stdout.includes("tls.ca_key_file"), good.stdout);
    await Deno.copyFile(`${dir}/root/ca.key`, `${dir}/seed/ca.key`);
    const bad = await check();
    assertEquals(bad.code, 1, bad.stdout + bad.stderr);
    assert(bad.stdout.includes("problem: a root key"), bad.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
