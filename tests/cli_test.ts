import { assert, assertEquals, assertMatch } from "./assert.ts";
import { runSkein } from "./skein_cli.ts";

const EXAMPLES = new URL("../config/examples/", import.meta.url).pathname;

Deno.test("skein version prints skein and Deno versions and exits 0", async () => {
  const r = await runSkein(["version"]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^skein \d+\.\d+\.\d+\ndeno \d+\.\d+\.\d+/);
  const j = await runSkein(["version", "-o", "json"]);
  const info = JSON.parse(j.stdout);
  assertEquals(info.deno, Deno.version.deno);
});

Deno.test("an unknown command exits 2 with a suggestion", async () => {
  const r = await runSkein(["contrl"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /unknown command "contrl"; did you mean "control"\?/);
});

Deno.test("no command prints help and exits 2; --help exits 0", async () => {
  const none = await runSkein([]);
  assertEquals(none.code, 2);
  assertMatch(none.stderr, /usage: skein <command>/);
  const help = await runSkein(["--help"]);
  assertEquals(help.code, 0);
  for (const c of ["control", "proxy", "ctl", "demo", "version", "check-config", "completion"]) {
    assert(help.stdout.includes(`  ${c}`), `help lists ${c}`);
  }
  for (const line of help.stdout.split("\n")) assert(line.length <= 100, line);
});

for (const cmd of ["control", "proxy", "ca", "demo", "version", "check-config", "completion"]) {
  Deno.test(`skein ${cmd} --help describes its flags and exits 0`, async () => {
    const r = await runSkein([cmd, "--help"]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, new RegExp(`usage: skein ${cmd}`));
    assertMatch(r.stdout, /--log-level/);
    for (const section of ["DESCRIPTION", "OPTIONS", "EXIT STATUS"]) {
      assert(r.stdout.includes(`\n${section}\n`), `no ${section}`);
    }
    for (const line of r.stdout.split("\n")) assert(line.length <= 100, line);
  });
}

Deno.test("an unknown flag exits 2 with a suggestion", async () => {
  const r = await runSkein(["control", "--confg", "x.yaml"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /unknown flag --confg; did you mean --config\?/);
});

Deno.test("check-config accepts every shipped example", async () => {
  for (const f of ["control.yaml", "proxy.yaml", "gateway.yaml", "resources.yaml"]) {
    const r = await runSkein(["check-config", EXAMPLES + f]);
    assertEquals(r.code, 0, `${f}: ${r.stderr}`);
    assertMatch(r.stdout, /: ok/);
  }
});

Deno.test("check-config reports a bad duration as file:line:col with the field path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = `${dir}/control.yaml`;
    await Deno.writeTextFile(
      bad,
      "node: cp-1\napi: 127.0.0.1:7400\n\nraft_tuning:\n  heartbeat: 100ms\n  election_timeout: fast\n",
    );
    const r = await runSkein(["check-config", bad]);
    assertEquals(r.code, 2);
    assertEquals(
      r.stderr.trim(),
      `${bad}:6:21: raft_tuning.election_timeout: expected a duration like "1s", got "fast"`,
    );
    const typo = `${dir}/proxy.yaml`;
    await Deno.writeTextFile(typo, "node: vm-1\ncontrol: [https://127.0.0.1:7400]\nupstream: []\n");
    const t = await runSkein(["check-config", typo]);
    assertEquals(t.code, 2);
    assertMatch(t.stderr, /proxy\.yaml:3:1: upstream: unknown key; did you mean "upstreams"\?/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control refuses to start on invalid configuration with exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = `${dir}/c.yaml`;
    await Deno.writeTextFile(bad, "node: cp-1\nraft: nowhere\n");
    const r = await runSkein(["control", "--config", bad]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /c\.yaml:2:7: raft: expected an address/);
    const missing = await runSkein(["proxy", "--config", `${dir}/none.yaml`]);
    assertEquals(missing.code, 2);
    assertMatch(missing.stderr, /none\.yaml: file not found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("skein ca create writes the seed once (key 0600) and refuses to overwrite it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-ca-create-" });
  try {
    const r = await runSkein([
      "ca",
      "create",
      "--out",
      `${dir}/ca`,
      "--trust-domain",
      "corp.example",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await Deno.stat(`${dir}/ca/ca.key`)).mode! & 0o777, 0o600);
    const text = await new Deno.Command("openssl", {
      args: ["x509", "-in", `${dir}/ca/ca.pem`, "-noout", "-text"],
      stdout: "piped",
    }).output();
    const out = new TextDecoder().decode(text.stdout);
    assert(out.includes("CA:TRUE"), out);
    assert(out.includes("URI:spiffe://corp.example"), out);
    const again = await runSkein(["ca", "create", "--out", `${dir}/ca`]);
    assertEquals(again.code, 1);
    assert(again.stderr.includes("already exists"), again.stderr);
    const bad = await runSkein([
      "ca",
      "create",
      "--out",
      `${dir}/x`,
      "--trust-domain",
      "Not A Domain",
    ]);
    assertEquals(bad.code, 2, bad.stderr);
    const usage = await runSkein(["ca", "destroy"]);
    assertEquals(usage.code, 2, usage.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check-config reports a YAML syntax error at its line:col before guessing the kind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Small and broken: nothing in it says control, proxy or resources.
    const f = `${dir}/mesh.yaml`;
    await Deno.writeTextFile(f, "node: vm-1\n  admin: [127.0.0.1:15000\n");
    const r = await runSkein(["check-config", f]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, new RegExp(`${f}:\\d+:\\d+: invalid YAML`));
    assert(!r.stderr.includes("cannot tell"), r.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
