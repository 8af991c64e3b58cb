import { assert, assertEquals, assertMatch, assertThrows } from "../tests/assert.ts";
import {
  ConfigError,
  ControlConfig,
  decodeConfigBytes,
  loadConfigFile,
  loadResourceFile,
  parseConfigText,
  parseResourceText,
  ProxyConfig,
} from "./mod.ts";

const GOOD_CONTROL = "node: cp-1\n";

function controlErr(text: string, env: Record<string, string> = {}): ConfigError {
  return assertThrows(
    () => parseConfigText(text, "control.yaml", ControlConfig, { env }),
    ConfigError,
  );
}

function proxyErr(text: string): ConfigError {
  return assertThrows(() => parseConfigText(text, "proxy.yaml", ProxyConfig), ConfigError);
}

Deno.test("the shipped examples validate", async () => {
  const c = await loadConfigFile(
    new URL("./examples/control.yaml", import.meta.url).pathname,
    ControlConfig,
  );
  assertEquals(c.node, "cp-1");
  assertEquals(c.raft_tuning.election_timeout, 1000);
  assertEquals(c.peers.map((p) => p.id), ["cp-1", "cp-2", "cp-3"]);
  const p = await loadConfigFile(
    new URL("./examples/proxy.yaml", import.meta.url).pathname,
    ProxyConfig,
  );
  assertEquals(p.services[0]!.health!.interval, 5000);
  assertEquals(p.upstreams[1]!.protocol, "tcp");
  const rs = await loadResourceFile(new URL("./examples/resources.yaml", import.meta.url).pathname);
  assertEquals(rs.map((r) => r.kind), [
    "Policy",
    "Route",
    "Authorization",
    "RateLimit",
    "ExternalService",
    "Authorization",
  ]);
});

Deno.test("defaults fill every key a minimal control.yaml leaves out", () => {
  const c = parseConfigText(GOOD_CONTROL, "control.yaml", ControlConfig);
  assertEquals(c.api, { hostname: "0.0.0.0", port: 7400 });
  assertEquals(c.raft, { hostname: "0.0.0.0", port: 7401 });
  assertEquals(c.raft_tuning, { heartbeat: 100, election_timeout: 1000, snapshot_every: 10_000 });
  assertEquals(c.trust_domain, "skein.local");
  assertEquals(c.peers, []);
  assert(Object.isFrozen(c));
});

Deno.test("a bad duration names file, line, column and field path", () => {
  const e = controlErr("node: cp-1\nraft_tuning:\n  heartbeat: 100ms\n  election_timeout: fast\n");
  assertEquals(e.issues.length, 1);
  assertEquals(
    e.message,
    'control.yaml:4:21: raft_tuning.election_timeout: expected a duration like "1s", got "fast"',
  );
});

Deno.test("an unknown key is rejected with a did-you-mean", () => {
  const e = controlErr("node: cp-1\nraft_tunning: {}\n");
  assertEquals(
    e.message,
    'control.yaml:2:1: raft_tunning: unknown key; did you mean "raft_tuning"?',
  );
  const nested = controlErr("node: cp-1\nraft_tuning: { hearbeat: 1s }\n");
  assertMatch(nested.message, /raft_tuning\.hearbeat: unknown key; did you mean "heartbeat"\?/);
  const far = controlErr("node: cp-1\nzzzzzz: 1\n");
  assertMatch(far.message, /zzzzzz: unknown key \(expected one of: node, data_dir/);
});

/** Each row: a bad control.yaml and a pattern its error must match. */
const BAD_CONTROL: [string, string, RegExp][] = [
  ["wrong type for node", "node: 5\n", /1:7: node: expected string, got 5/],
  ["missing node", "api: 0.0.0.0:1\n", /node: missing required key/],
  ["bad address", "node: a\napi: nope\n", /2:6: api: expected an address like/],
  ["port out of range", "node: a\napi: 1.2.3.4:70000\n", /api: expected a port from 0 to 65535/],
  ["bad IPv4", "node: a\nraft: 300.1.1.1:80\n", /raft: expected a valid host name or IP/],
  ["address as number", "node: a\napi: 7400\n", /api: expected an address like .*got 7400/],
  [
    "duplicate peer ids",
    "node: a\npeers: [a=1.1.1.1:1, b=1.1.1.2:1, a=1.1.1.3:1]\n",
    /peers\[2\]: duplicate peer id "a" \(also at peers\[0\]\)/,
  ],
  ["peers without self", "node: a\npeers: [b=1.1.1.2:1]\n", /peers: expected the list to include/],
  ["peer without id", "node: a\npeers: [1.1.1.1:7401]\n", /peers\[0\]: expected a peer like/],
  ["peers not a list", "node: a\npeers: a=1.1.1.1:1\n", /peers: expected array, got "a=/],
  [
    "duration as number",
    "node: a\nraft_tuning: { heartbeat: 100 }\n",
    /heartbeat: expected a duration.*got 100/,
  ],
  ["negative duration", "node: a\nraft_tuning: { heartbeat: -1s }\n", /expected a duration/],
  ["duration unit order", "node: a\nraft_tuning: { heartbeat: 1s1m }\n", /expected a duration/],
  [
    "election below heartbeats",
    "node: a\nraft_tuning: { heartbeat: 1s }\n",
    /at least 3 heartbeats/,
  ],
  ["snapshot_every not int", "node: a\nraft_tuning: { snapshot_every: 1.5 }\n", /snapshot_every: /],
  [
    "bad size",
    "node: a\nlimits: { max_body: 1 parsec }\n",
    /max_body: expected a size like "64KiB"/,
  ],
  [
    "bad trust domain",
    "node: a\ntrust_domain: Not_A_Domain\n",
    /trust_domain: expected a lower-case/,
  ],
  ["bad enum", "node: a\nlog: { level: loud }\n", /log.level: expected one of "debug", "info"/],
  [
    "a rotation lead shorter than a rotation takes",
    "node: a\nca: { rotate_before_expiry: 1d, trust_wait: 1h }\n",
    /ca.rotate_before_expiry: expected at least trust_wait \+ tls.proxy_cert_ttl \(25h\)/,
  ],
  ["an unknown on_stuck", "node: a\nca: { on_stuck: ignore }\n", /ca.on_stuck: expected one of/],
  ["node id with spaces", "node: my node\n", /node: expected a name of letters/],
  ["empty file", "", /1:1: file is empty/],
  ["only a comment", "# nothing here\n", /file is empty/],
  [
    "top-level list",
    "- a\n- b\n",
    /expected a mapping of configuration keys at the top, got a list/,
  ],
  ["top-level scalar", "hello\n", /expected a mapping .* got "hello"/],
  ["duplicate keys", "node: a\nnode: b\n", /2:1: invalid YAML: Map keys must be unique/],
  ["broken flow", "node: [\n", /invalid YAML/],
  ["tab indentation", "node: a\nraft_tuning:\n\theartbeat: 1s\n", /invalid YAML/],
  ["unterminated quote", 'node: "abc\n', /invalid YAML/],
];

for (const [what, text, pattern] of BAD_CONTROL) {
  Deno.test(`control.yaml rejects ${what} with a clear error`, () => {
    const e = controlErr(text);
    assert(e.issues.length > 0);
    assertMatch(e.message, pattern);
    for (const i of e.issues) assertEquals(i.file, "control.yaml");
  });
}

Deno.test("a billion-laughs alias bomb is refused without expanding it", () => {
  const bomb = [
    "a: &a [x, x, x, x, x, x, x, x, x, x]",
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
    "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]",
  ].join("\n");
  assertMatch(controlErr(bomb).message, /too many alias expansions/);
});

Deno.test("a few aliases are fine", () => {
  const c = parseConfigText(
    "node: cp-1\nraft_tuning: &t { heartbeat: 50ms, election_timeout: 500ms }\n",
    "c.yaml",
    ControlConfig,
  );
  assertEquals(c.raft_tuning.heartbeat, 50);
});

Deno.test("binary garbage is refused as not text", () => {
  const garbage = new Uint8Array(4096);
  let x = 12345;
  for (let i = 0; i < garbage.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    garbage[i] = x & 0xff;
  }
  const e = assertThrows(() => decodeConfigBytes(garbage, "g.yaml"), ConfigError);
  assertMatch(e.message, /g\.yaml: file is not UTF-8 text/);
  const nul = assertThrows(
    () => decodeConfigBytes(new TextEncoder().encode("node: a\n\0\n"), "n.yaml"),
    ConfigError,
  );
  assertMatch(nul.message, /n\.yaml:2:1: file contains a NUL byte/);
});

Deno.test("a 10 MB file is refused before it is parsed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/control.yaml`;
    await Deno.writeTextFile(path, "node: cp-1\n# " + "x".repeat(10 * 1024 * 1024) + "\n");
    const e = await loadConfigFile(path, ControlConfig).then(
      () => null,
      (e) => e,
    );
    assert(e instanceof ConfigError);
    assertMatch(e.message, /control\.yaml: file is \d+ bytes, larger than the 1048576 byte limit/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing file is a clear error", async () => {
  const e = await loadConfigFile("/nonexistent/skein.yaml", ControlConfig).catch((e) => e);
  assert(e instanceof ConfigError);
  assertEquals(e.message, "/nonexistent/skein.yaml: file not found");
});

Deno.test("deeply nested YAML gives an error, not a crash", () => {
  const deep = "node: a\nx: " + "[".repeat(5000) + "]".repeat(5000) + "\n";
  const e = controlErr(deep);
  assert(e.issues.length > 0);
});

Deno.test("SKEIN_* environment variables override keys, nested with __", () => {
  const c = parseConfigText(GOOD_CONTROL, "c.yaml", ControlConfig, {
    env: {
      SKEIN_API: "127.0.0.1:7500",
      SKEIN_RAFT_TUNING__HEARTBEAT: "50ms",
      SKEIN_PEERS: "[cp-1=127.0.0.1:1, cp-2=127.0.0.1:2]",
      SKEIN_CONTROL: "ignored: belongs to ctl",
      PATH: "/bin",
    },
  });
  assertEquals(c.api.port, 7500);
  assertEquals(c.raft_tuning.heartbeat, 50);
  assertEquals(c.peers.length, 2);
});

Deno.test("a bad environment override names the variable", () => {
  const e = controlErr(GOOD_CONTROL, { SKEIN_RAFT_TUNING__HEARTBEAT: "zz" });
  assertEquals(
    e.message,
    'env SKEIN_RAFT_TUNING__HEARTBEAT: raft_tuning.heartbeat: expected a duration like "1s", got "zz"',
  );
});

Deno.test("proxy.yaml errors point into lists", () => {
  assertMatch(
    proxyErr("node: a\ncontrol: [https://x:1]\nservices:\n  - name: pay\n    port: 99999\n")
      .message,
    /proxy\.yaml:5:11: services\[0\]\.port: /,
  );
  assertMatch(proxyErr("node: a\ncontrol: []\n").message, /control: expected at least one/);
  assertMatch(proxyErr("node: a\ncontrol: [ftp://x]\n").message, /control\[0\]: expected a URL/);
  assertMatch(
    proxyErr(
      "node: a\ncontrol: [https://x:1]\nupstreams:\n  - { service: l, listen: 127.0.0.1:9001 }\n  - { service: m, listen: 127.0.0.1:9001 }\n",
    ).message,
    /upstreams\[1\]\.listen: address 127\.0\.0\.1:9001 is already used by upstreams\[0\]/,
  );
  assertMatch(
    proxyErr(
      "node: a\ncontrol: [https://x:1]\nupstreams:\n  - { service: l, listen: x, protcol: tcp }\n",
    )
      .message,
    /protcol: unknown key; did you mean "protocol"\?/,
  );
});

Deno.test("resource files report each bad document with its line", () => {
  const e = assertThrows(
    () =>
      parseResourceText(
        "kind: Policy\nservice: a\ntimeout: soon\n---\nkind: Frobnicator\nservice: b\n---\nkind: RateLimit\nservice: c\nrequests_per_second: 5\nburts: 3\n",
        "r.yaml",
      ),
    ConfigError,
  );
  const lines = e.message.split("\n");
  assertMatch(lines[0]!, /^r\.yaml:3:10: timeout: expected a duration/);
  assertMatch(lines[1]!, /^r\.yaml:5:\d+: kind: /);
  assertMatch(e.message, /r\.yaml:11:1: burts: unknown key; did you mean "burst"\?/);
});

Deno.test("ring_hash requires a header to hash on", () => {
  const e = assertThrows(
    () =>
      parseResourceText(
        "kind: Policy\nservice: a\nload_balancer: { algorithm: ring_hash }\n",
        "p.yaml",
      ),
    ConfigError,
  );
  assertMatch(e.message, /load_balancer\.hash_on: expected hash_on/);
});

Deno.test("an unknown resource kind lists the known kinds", () => {
  const e = assertThrows(
    () => parseResourceText("kind: Frob\nservice: a\n", "k.yaml"),
    ConfigError,
  );
  assertEquals(
    e.message,
    'k.yaml:1:7: kind: expected one of Policy, Route, Authorization, RateLimit, ExternalService, got "Frob"',
  );
});
