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
  for (const c of ["control", "proxy", "ctl", "demo", "version", "check-config"]) {
    assert(help.stdout.includes(`  ${c}`), `help lists ${c}`);
  }
});

for (const cmd of ["control", "proxy", "demo", "version", "check-config"]) {
  Deno.test(`skein ${cmd} --help describes its flags and exits 0`, async () => {
    const r = await runSkein([cmd, "--help"]);
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, new RegExp(`usage: skein ${cmd}`));
    assertMatch(r.stdout, /--log-level/);
  });
}

Deno.test("an unknown flag exits 2 with a suggestion", async () => {
  const r = await runSkein(["control", "--confg", "x.yaml"]);
  assertEquals(r.code, 2);
  assertMatch(r.stderr, /unknown flag --confg; did you mean --config\?/);
});

Deno.test("check-config accepts every shipped example", async () => {
  for (const f of ["control.yaml", "proxy.yaml", "resources.yaml"]) {
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
    await Deno.writeTextFile(typo, "node: vm-1\ncontrol: [http://127.0.0.1:7400]\nupstream: []\n");
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
