import assert from "node:assert/strict";
import { DashboardWindow } from "../control/dashboard/window.ts";
import { createApi, operatorAuthorizer } from "../control/api/mod.ts";
import { FakeBackend } from "../tests/control/fake_backend.ts";
import { hashSecret } from "../control/auth/mod.ts";
import { nullLogger } from "../common/log.ts";
import { runCtl } from "./ctl.ts";

interface Run {
  code: number;
  out: string;
  err: string;
}

/** Serves the API with a fake backend on 127.0.0.1:0 for the duration of `fn`. */
async function withControl(
  fn: (
    ctl: (...args: string[]) => Promise<Run>,
    backend: FakeBackend,
    seen: Request[],
  ) => Promise<void>,
  opts: { enforceTokens?: boolean } = {},
): Promise<void> {
  const backend = new FakeBackend();
  if (opts.enforceTokens) {
    // SKEIN_TOKEN below plays the bootstrap admin token.
    backend.applyDirect({
      type: "put_operator_token",
      record: {
        id: "boot",
        name: "bootstrap",
        role: "admin",
        hash: hashSecret("skn_test_token_123"),
        createdAt: 0,
        expiresAt: null,
      },
    });
  }
  const app = createApi(backend, {
    dashboard: new DashboardWindow(),
    authorize: opts.enforceTokens
      ? operatorAuthorizer({ tokens: () => backend.state().operatorTokens(), log: nullLogger })
      : undefined,
  });
  const seen: Request[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(req.clone());
    return app.fetch(req);
  });
  const url = `http://127.0.0.1:${server.addr.port}`;
  const ctl = async (...args: string[]): Promise<Run> => {
    let out = "";
    let err = "";
    const code = await runCtl(args, {
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
      env: { SKEIN_CONTROL: url, SKEIN_TOKEN: "skn_test_token_123" },
    });
    return { code, out, err };
  };
  try {
    await fn(ctl, backend, seen);
  } finally {
    await server.shutdown();
  }
}

const FILE = `kind: Policy
service: ledger
timeout: 2s
retries: { attempts: 3, per_try_timeout: 500ms }
---
kind: ExternalService
name: stripe
hosts: [api.stripe.com:443]
`;

async function tempYaml(text: string): Promise<string> {
  const p = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(p, text);
  return p;
}

Deno.test("ctl apply, get, diff, history, rollback and delete work end to end", async () => {
  await withControl(async (ctl, backend, seen) => {
    const file = await tempYaml(FILE);
    try {
      let r = await ctl("apply", "-f", file);
      assert.equal(r.code, 0, r.err);
      assert.equal(
        r.out,
        "Policy/ledger created (revision 1)\nExternalService/stripe created (revision 1)\n",
      );
      assert.equal(seen.at(-1)?.headers.get("authorization"), "Bearer skn_test_token_123");
      assert.equal(backend.state().getResource("Policy", "ledger")?.resource.timeout, "2s");

      r = await ctl("apply", "-f", file);
      assert.match(r.out, /Policy\/ledger unchanged \(revision 1\)/);

      r = await ctl("get", "policy");
      assert.equal(r.out, "KIND    NAME    REVISION\nPolicy  ledger  1\n");
      r = await ctl("get", "Policy", "ledger");
      assert.match(r.out, /^kind: Policy\nservice: ledger\ntimeout: 2s\n/);
      r = await ctl("get", "Policy", "ledger", "-o", "json");
      assert.equal(JSON.parse(r.out).revision, 1);

      await Deno.writeTextFile(file, FILE.replace("timeout: 2s", "timeout: 3s"));
      r = await ctl("diff", "-f", file);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Policy\/ledger: update\n/);
      assert.match(r.out, /^- timeout: 2s$/m);
      assert.match(r.out, /^\+ timeout: 3s$/m);
      assert.match(r.out, /ExternalService\/stripe: unchanged/);
      r = await ctl("apply", "-f", file);
      assert.match(r.out, /Policy\/ledger updated \(revision 2\)/);

      r = await ctl("history", "Policy", "ledger");
      assert.match(r.out, /^REVISION\s+RAFT_INDEX\s+STATE\n1\s+1\s*\n2\s+\d+\s+current\n$/);
      r = await ctl("rollback", "Policy", "ledger", "1");
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /rolled back to revision 1 \(now revision 3\)/);
      assert.equal(backend.state().getResource("Policy", "ledger")?.resource.timeout, "2s");

      r = await ctl("delete", "Policy", "ledger");
      assert.equal(r.out, "Policy/ledger deleted (revision 4)\n");
      r = await ctl("get", "Policy", "ledger");
      assert.equal(r.code, 1);
      assert.match(r.err, /404 not_found/);
      r = await ctl("diff", "-f", file);
      assert.match(r.out, /Policy\/ledger: create/);
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test("ctl apply says nothing about parts this version's proxies enforce", async () => {
  await withControl(async (ctl) => {
    const file = await tempYaml(
      "kind: ExternalService\nname: stripe\nhosts: [api.stripe.com:443]\n",
    );
    try {
      const r = await ctl("apply", "-f", file);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /ExternalService\/stripe created/);
      // Enforced by the calling proxies (egress), so no note.
      assert.equal(r.err, "");
      // Nothing to say about what is enforced (RateLimit, Route mirror and fault included).
      await Deno.writeTextFile(
        file,
        "kind: RateLimit\nservice: ledger\nrequests_per_second: 5\nburst: 10\n---\n" +
          "kind: Route\nservice: ledger\nrules:\n  - backends: [{ version: v1 }]\n" +
          "    mirror: { version: v3, percent: 1 }\n" +
          "    fault: { abort: { percent: 1, status: 503 } }\n",
      );
      assert.equal((await ctl("apply", "-f", file)).err, "");
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test("ctl apply refuses an invalid file with file:line:col and exit 2, writing nothing", async () => {
  await withControl(async (ctl, backend) => {
    const file = await tempYaml("kind: Policy\nservice: ledger\ntimeout: fast\n");
    try {
      const r = await ctl("apply", "-f", file);
      assert.equal(r.code, 2);
      assert.match(r.err, /:3:\d+: timeout: expected a duration/);
      assert.equal(backend.proposed.length, 0);
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test("ctl services, status and members print tables, json and yaml", async () => {
  await withControl(async (ctl, backend) => {
    backend.applyDirect({
      type: "register_instance",
      instance: {
        id: "a1",
        service: "api",
        node: "vm-1",
        address: "10.0.0.1",
        port: 80,
        zone: "z1",
        version: "v1",
        weight: 1,
        tags: [],
        capabilities: [],
        meta: {},
        health: "passing",
      },
    });
    let r = await ctl("services");
    assert.equal(r.out, "NAME  PASSING  WARNING  CRITICAL\napi   1        0        0\n");
    r = await ctl("services", "api", "--healthy");
    assert.match(
      r.out,
      /^ID\s+ADDRESS\s+PORT.*\na1\s+10\.0\.0\.1\s+80\s+vm-1\s+z1\s+v1\s+1\s+passing\n$/,
    );
    r = await ctl("services", "api", "-o", "yaml");
    assert.match(r.out, /^service: api\n/m);
    r = await ctl("services", "--stale", "-o", "json");
    assert.equal(JSON.parse(r.out).services[0].name, "api");

    r = await ctl("status");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^NODE\s+ROLE\s+LEADER/);
    assert.match(r.out, /\ncp-1\s+leader\s+cp-1\s+1\s+1\s+1\s+http:\/\/127\.0\.0\.1:\d+\n/);

    r = await ctl("members", "add", "cp-2=10.0.0.2:7401");
    assert.equal(r.code, 0, r.err);
    r = await ctl("members", "-o", "json");
    assert.deepEqual(JSON.parse(r.out).map((m: { node: string }) => m.node), ["cp-1", "cp-2"]);
    // cp-2 has no API address: status shows it as unreachable and fails.
    r = await ctl("status");
    assert.equal(r.code, 1);
    assert.match(r.out, /cp-2\s+unreachable/);
    r = await ctl("members", "remove", "cp-2");
    assert.equal(r.code, 0, r.err);
    r = await ctl("members", "list");
    assert.doesNotMatch(r.out, /cp-2/);
  });
});

Deno.test("ctl reports usage errors with exit 2 and suggestions", async () => {
  const io = () => {
    const o = { out: "", err: "" };
    return {
      o,
      io: {
        stdout: (t: string) => (o.out += t),
        stderr: (t: string) => (o.err += t),
        env: { SKEIN_CONTROL: "http://127.0.0.1:9" },
      },
    };
  };
  const cases: [string[], RegExp][] = [
    [["servics"], /unknown verb "servics"; did you mean services\?/],
    [["services", "--helthy"], /unknown flag --helthy; did you mean --healthy\?/],
    [["get", "Polcy"], /did you mean Policy\?/],
    [["get"], /get needs a KIND, one of: Policy, Route/],
    [["apply"], /apply needs -f FILE/],
    [["rollback", "Policy", "a", "x"], /REV must be a revision number/],
    [["members", "ad", "x=y:1"], /did you mean add\?/],
    [["members", "add", "cp-2"], /NODE=HOST:PORT/],
    [["status", "-o", "xml"], /expects one of table, json, yaml/],
    [["status", "--control", "ftp://x"], /--control expects a URL/],
    [[], /missing verb/],
  ];
  for (const [args, re] of cases) {
    const { o, io: i } = io();
    assert.equal(await runCtl(args, i), 2, args.join(" "));
    assert.match(o.err, re, args.join(" "));
  }
  const { o, io: i } = io();
  assert.equal(await runCtl(["apply", "--help"], i), 0);
  assert.match(o.out, /usage: skein ctl apply -f FILE/);
  assert.match(o.out, /--file/);
});

Deno.test("ctl exits 1 with a clear message when the control API is unreachable", async () => {
  // Grab a free port, then close it so nothing listens there.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  let err = "";
  const code = await runCtl(["services", "--control", `http://127.0.0.1:${port}`], {
    stdout: () => {},
    stderr: (t) => (err += t),
    env: {},
  });
  assert.equal(code, 1);
  assert.match(err, new RegExp(`cannot reach the control API at http://127\\.0\\.0\\.1:${port}`));
});

Deno.test("ctl tokens create prints the token once (bare or as json) and tokens list hides it", async () => {
  await withControl(async (ctl, backend, seen) => {
    const plain = await ctl("tokens", "create", "--service", "payments", "--ttl", "2h");
    assert.equal(plain.code, 0, plain.err);
    assert.match(plain.out, /^skn_join_[A-Za-z0-9_-]+\n$/);
    assert.match(plain.err, /for service payments: 1 use\(s\).*shown only once/);
    const last = seen.at(-1)!;
    assert.equal(last.method, "POST");
    assert.deepEqual(await last.json(), { service: "payments", ttl: "2h", uses: 1 });

    const json = await ctl("tokens", "create", "--service", "ledger", "--uses", "3", "-o", "json");
    assert.equal(json.code, 0, json.err);
    const body = JSON.parse(json.out);
    assert.match(body.token, /^skn_join_/);
    assert.equal(body.uses, 3);
    assert.equal(backend.state().joinTokens().length, 2);

    const list = await ctl("tokens", "list");
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^ID\s+SERVICE\s+USES_LEFT/);
    assert.match(list.out, /ledger\s+3\s+3/);
    assert.ok(!list.out.includes(body.token) && !list.out.includes(plain.out.trim()));
  });
});

Deno.test("ctl tokens reports bad usage with exit 2 and API refusals with exit 1", async () => {
  await withControl(async (ctl) => {
    assert.equal((await ctl("tokens", "create")).code, 2);
    assert.equal((await ctl("tokens", "create", "--service", "p", "--uses", "0")).code, 2);
    assert.equal((await ctl("tokens", "mint")).code, 2);
    const bad = await ctl("tokens", "create", "--service", "p", "--ttl", "8d");
    assert.equal(bad.code, 1);
    assert.match(bad.err, /400 invalid_request: .*ttl/);
  });
});

Deno.test("ctl tokens create --role prints an operator token that then works for its role", async () => {
  await withControl(async (ctl, backend, seen) => {
    const made = await ctl("tokens", "create", "--role", "read", "--name", "dash", "--ttl", "1h");
    assert.equal(made.code, 0, made.err);
    assert.match(made.out, /^skn_op_[A-Za-z0-9_-]+\n$/);
    assert.match(made.err, /operator token \S+ \(dash\) with role read.*shown only once/);
    assert.deepEqual(await seen.at(-1)!.json(), { role: "read", ttl: "1h", name: "dash" });
    const secret = made.out.trim();
    const rec = backend.state().operatorTokens().find((r) => r.name === "dash");
    assert.equal(rec?.hash, hashSecret(secret));

    const list = await ctl("tokens", "operators");
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /dash\s+read\s+\d{4}-/);
    assert.ok(!list.out.includes(secret));

    // With the read token, a write is refused (403) and ctl says so with exit 1.
    const file = await tempYaml(FILE);
    try {
      const denied = await ctl("apply", "-f", file, "--token", secret);
      assert.equal(denied.code, 1);
      assert.match(denied.err, /403 forbidden/);
      const noToken = await runCtl(["apply", "-f", file], {
        stdout: () => {},
        stderr: () => {},
        env: { SKEIN_CONTROL: new URL(seen.at(-1)!.url).origin },
      });
      assert.equal(noToken, 1);
    } finally {
      await Deno.remove(file);
    }

    const rev = await ctl("tokens", "revoke", rec!.id);
    assert.equal(rev.code, 0, rev.err);
    assert.equal(backend.state().operatorTokens().some((r) => r.name === "dash"), false);
    assert.equal((await ctl("members", "--token", secret)).code, 1);

    assert.equal((await ctl("tokens", "create", "--role", "root")).code, 2);
    assert.equal((await ctl("tokens", "create", "--role", "read", "--service", "p")).code, 2);
  }, { enforceTokens: true });
});

Deno.test("ctl ca shows roots, rotates in three steps and revokes", async () => {
  const { createCa } = await import("../control/ca/mod.ts");
  await withControl(async (ctl, backend) => {
    const ca = await createCa({ trustDomain: "skein.local", now: Date.now() });
    backend.applyDirect({
      type: "put_ca",
      ca: ca as unknown as Record<string, unknown>,
      expect_root_id: null,
    });
    const roots = await ctl("ca", "roots", "-o", "json");
    assert.equal(roots.code, 0, roots.err);
    assert.equal(JSON.parse(roots.out).active_root_id, ca.activeRootId);

    const rotated = await ctl("ca", "rotate", "-o", "json");
    assert.equal(rotated.code, 0, rotated.err);
    const view = JSON.parse(rotated.out).ca as { activeRootId: string; roots: { id: string }[] };
    assert.equal(view.roots.length, 2);
    assert.equal(view.activeRootId, ca.activeRootId, "rotate without --activate only trusts");
    assert(!rotated.out.includes("PRIVATE KEY"), "a key left the API");
    const next = view.roots.find((r) => r.id !== ca.activeRootId)!.id;

    const table = await ctl("ca", "activate", next);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, new RegExp(`${next}\\s+2\\s+yes`));
    const fin = await ctl("ca", "finish", "-o", "json");
    assert.equal(fin.code, 0, fin.err);
    assert.deepEqual(JSON.parse(fin.out).ca.roots.map((r: { id: string }) => r.id), [next]);

    const rev = await ctl("ca", "revoke", "--service", "mallory");
    assert.equal(rev.code, 0, rev.err);
    assert.match(rev.out, /spiffe:\/\/skein\.local\/svc\/mallory revoked/);
    const both = await ctl("ca", "revoke", "--service", "a", "--spiffe-id", "spiffe://x/svc/a");
    assert.equal(both.code, 2);
    const bad = await ctl("ca", "spin");
    assert.equal(bad.code, 2);
    assert.match(bad.err, /unknown ca command/);
  }, { enforceTokens: true });
});

Deno.test("ctl refuses a plain-http control URL off this machine, before sending the token", async () => {
  let err = "";
  let fetched = false;
  const code = await runCtl(["services", "--control", "http://10.0.0.1:7400"], {
    stdout: () => {},
    stderr: (t) => (err += t),
    env: { SKEIN_TOKEN: "skn_op_secret" },
    fetch: () => {
      fetched = true;
      return Promise.resolve(new Response("{}"));
    },
  });
  assert.equal(code, 2);
  assert.match(err, /plain http; the API is https only and the token would travel in clear/);
  assert.equal(fetched, false);
});

Deno.test("ctl reads the token from --token-file, so it stays out of the process list", async () => {
  const file = await Deno.makeTempFile();
  await Deno.writeTextFile(file, "skn_op_from_file\n");
  try {
    const sent: (string | null)[] = [];
    await runCtl(["services", "--token-file", file, "--control", "http://127.0.0.1:9"], {
      stdout: () => {},
      stderr: () => {},
      env: {},
      fetch: (r: Request) => {
        sent.push(r.headers.get("authorization"));
        return Promise.resolve(Response.json({ services: [] }));
      },
    });
    assert.deepEqual(sent, ["Bearer skn_op_from_file"]);
    // A missing file is a usage error, not an unauthenticated call.
    let err = "";
    const code = await runCtl(["services", "--token-file", `${file}.missing`], {
      stdout: () => {},
      stderr: (t) => (err += t),
      env: { SKEIN_CONTROL: "http://127.0.0.1:9" },
    });
    assert.equal(code, 2);
    assert.match(err, /--token-file/);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("ctl dashboard prints a /ui/ link whose read token reads the dashboard data", async () => {
  await withControl(async (ctl, backend) => {
    const r = await ctl("dashboard", "--ttl", "1h");
    assert.equal(r.code, 0, r.err);
    const m = /^(http:\/\/127\.0\.0\.1:\d+)\/ui\/#token=(skn_op_[A-Za-z0-9_-]+)\n$/.exec(r.out);
    assert.ok(m, r.out);
    const rec = backend.state().operatorTokens().find((t) => t.name === "dashboard link");
    assert.equal(rec?.role, "read");
    assert.equal(rec?.hash, hashSecret(m![2]!));
    // The page needs no token; its data needs the read token.
    const page = await fetch(`${m![1]}/ui/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="app.js">/);
    const anon = await fetch(`${m![1]}/v1/dashboard`);
    assert.equal(anon.status, 401);
    await anon.body?.cancel();
    const data = await fetch(`${m![1]}/v1/dashboard`, {
      headers: { authorization: `Bearer ${m![2]}` },
    });
    assert.equal(data.status, 200);
    const body = await data.json();
    assert.deepEqual(Object.keys(body).sort(), [
      "certs",
      "denials",
      "edges",
      "now",
      "services",
      "signals",
      "trust_domain",
    ]);
    const missing = await fetch(`${m![1]}/ui/secrets.txt`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  }, { enforceTokens: true });
});
