/**
 * `Authorization` enforcement with real processes: a control node, two proxies enrolled with
 * join tokens (so the hop between them is mTLS and the callee knows the caller), an app that
 * records what reaches it, and policies applied with `skein ctl apply`.
 * @module
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { runSkein } from "../skein_cli.ts";
import { testFetch } from "../tls_fixture.ts";
import {
  type App,
  ledgerAndBilling,
  metricsText,
  type ProxyHandle,
  startApp,
  startControl,
  startProxy,
  waitEligible,
  waitFor,
} from "./helpers.ts";

/** Applies YAML resources with `skein ctl apply -f`; throws with ctl's output on failure. */
async function ctlApply(dir: string, url: string, token: string, yaml: string): Promise<void> {
  const file = `${dir}/authz-${crypto.randomUUID()}.yaml`;
  await Deno.writeTextFile(file, yaml);
  const r = await runSkein(["ctl", "apply", "-f", file, "--control", url, "--token", token]);
  if (r.code !== 0) throw new Error(`skein ctl apply failed (${r.code}): ${r.stderr}${r.stdout}`);
}

/** Applies an Authorization for ledger that denies by default, with `rules` (YAML) after it. */
function applyLedgerDenyByDefault(
  dir: string,
  cp: { url: string; token: string },
  rules: string,
): Promise<void> {
  return ctlApply(
    dir,
    cp.url,
    cp.token,
    `kind: Authorization\nservice: ledger\ndefault: deny\n${rules}`,
  );
}

async function call(addr: string, method: string, path: string) {
  const res = await fetch(`http://${addr}${path}`, { method });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Audit lines the callee proxy wrote so far. */
function audits(p: ProxyHandle): string[] {
  return p.child.lines.filter((l) => /component"?[=:]"?audit/.test(l));
}

Deno.test("the callee proxy enforces Authorization resources on its inbound, over mTLS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-authz-" });
  const cp = await startControl(dir);
  const seen: string[] = [];
  const ledgerApp = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const u = new URL(req.url);
    if (u.pathname !== "/healthz") seen.push(`${req.method} ${u.pathname}`);
    return new Response("ledger");
  });
  const apps: App[] = [startApp("billing")];
  const proxies: ProxyHandle[] = [];
  try {
    const { callee, caller } = await ledgerAndBilling(
      dir,
      cp,
      { ledger: ledgerApp.addr.port, billing: apps[0]!.port },
      proxies,
    );
    await callee.child.waitLine(/data plane started.*mtls=true/);
    await caller.child.waitLine(/data plane started.*mtls=true/);
    await waitEligible(caller, "ledger", 1);
    const up = caller.upstreams.ledger!;

    // --- no Authorization yet: open to mesh members, nothing audited.
    assertEquals((await call(up, "POST", "/charge")).status, 200);
    assertEquals(audits(callee), []);

    // --- only payments may call: billing is denied by default, and the app never sees it.
    await applyLedgerDenyByDefault(
      dir,
      cp,
      `allow:
  - from: [payments]
    methods: [POST]
    paths: [/charge, /refund/*]
`,
    );
    const denied = await waitFor("billing to be denied", async () => {
      const r = await call(up, "POST", "/charge");
      return r.status === 403 ? r : null;
    });
    assertEquals(denied.headers.get("x-skein-denied"), "default_deny");
    assertEquals(denied.headers.get("x-skein-proxy"), "vm-ledger", "the callee answered");
    assertMatch(denied.body, /denied by policy/);
    assertEquals(seen, ["POST /charge"], "only the call made before the policy reached the app");
    const denyLine = await callee.child.waitLine(/component"?[=:]"?audit.*decision"?[=:]"?deny/);
    assertMatch(denyLine.input!, /caller"?[=:]"?spiffe:\/\/[^ ]+\/svc\/billing/);
    assertMatch(denyLine.input!, /reason"?[=:]"?default_deny/);
    assertMatch(denyLine.input!, /path"?[=:]"?\/charge/);

    // --- rules by method and path prefix/glob for billing, with allowed calls audited too.
    await applyLedgerDenyByDefault(
      dir,
      cp,
      `audit_allowed: true
allow:
  - from: [billing]
    methods: [GET]
    paths: [/reports/*, /users/*/balance]
deny:
  - from: [billing]
    paths: [/reports/secret/*]
`,
    );
    await waitFor("billing to be allowed GET /reports/2026", async () => {
      return (await call(up, "GET", "/reports/2026")).status === 200;
    });
    const before = audits(callee).length;
    assertEquals((await call(up, "GET", "/users/7/balance")).status, 200);
    assertEquals((await call(up, "GET", "/users/7/x/balance")).status, 403, "* is one segment");
    assertEquals((await call(up, "POST", "/reports/2026")).status, 403, "method not allowed");
    const secret = await call(up, "GET", "/reports/secret/plan");
    assertEquals(secret.status, 403);
    assertEquals(secret.headers.get("x-skein-denied"), "denied_by_rule");
    assert(seen.includes("GET /users/7/balance"));
    assert(!seen.some((s) => s.includes("/x/balance") || s.includes("secret")), seen.join());
    assert(!seen.includes("POST /reports/2026"), seen.join());
    await waitFor("4 more audit lines", () => audits(callee).length >= before + 4, 5_000);
    const recent = audits(callee).slice(before);
    assertEquals(recent.length, 4, recent.join("\n"));
    assertMatch(recent[0]!, /decision"?[=:]"?allow.*rule"?[=:]"?"?allow\[0\]/);
    assertMatch(recent[3]!, /decision"?[=:]"?deny.*rule"?[=:]"?"?deny\[0\]/);
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await ledgerApp.shutdown();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** Sends one HTTP request through an opaque TCP upstream; the answer, or "" when closed. */
async function throughTunnel(addr: string): Promise<string> {
  const i = addr.lastIndexOf(":");
  const c = await Deno.connect({ hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
  try {
    await c.write(
      new TextEncoder().encode("GET /db HTTP/1.1\r\nhost: ledger\r\nconnection: close\r\n\r\n"),
    );
    let out = "";
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await c.read(buf).catch(() => null);
      if (n === null) return out;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    c.close();
  }
}

Deno.test("opaque TCP to a service with an Authorization needs a rule allowing the caller everything", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-authz-tcp-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("ledger"), startApp("billing")];
  const proxies: ProxyHandle[] = [];
  try {
    const { callee, caller } = await ledgerAndBilling(
      dir,
      cp,
      { ledger: apps[0]!.port, billing: apps[1]!.port },
      proxies,
      "tcp",
    );
    const up = caller.upstreams.ledger!;
    await waitFor(
      "the tunnel to answer",
      async () => /^HTTP\/1\.1 200/.test(await throughTunnel(up)),
    );
    const hits = () => apps[0]!.hits;

    // A rule limited to some paths cannot be enforced on a byte stream: the tunnel is refused.
    await applyLedgerDenyByDefault(
      dir,
      cp,
      `allow:
  - from: [billing]
    paths: [/db/*]
`,
    );
    await callee.child.waitLine(/authorization policy applied.*service"?[=:]"?ledger/);
    await waitFor("the tunnel to be refused", async () => (await throughTunnel(up)) === "");
    const before = hits();
    assertEquals(await throughTunnel(up), "");
    assertEquals(hits(), before, "a refused tunnel never reaches the app");
    const line = await callee.child.waitLine(/component"?[=:]"?audit.*method"?[=:]"?TCP/);
    assertMatch(line.input!, /reason"?[=:]"?default_deny/);

    // A rule without methods or paths covers everything, so it covers the tunnel.
    await applyLedgerDenyByDefault(
      dir,
      cp,
      `allow:
  - from: [billing]
`,
    );
    await waitFor(
      "the tunnel to be allowed",
      async () => /^HTTP\/1\.1 200/.test(await throughTunnel(up)),
    );
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a proxy fronting two services calls as the service each upstream names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-authz-caller-" });
  const cp = await startControl(dir);
  const apps: App[] = [startApp("ledger"), startApp("alpha"), startApp("beta")];
  const proxies: ProxyHandle[] = [];
  try {
    const callee = await startProxy(dir, {
      node: "vm-ledger",
      control: [cp.url],
      workers: 1,
      services: [{ name: "ledger", port: apps[0]!.port }],
    });
    proxies.push(callee);
    // alpha is the first service: the upstream without a caller calls as alpha.
    const ab = await startProxy(dir, {
      node: "vm-ab",
      control: [cp.url],
      services: [{ name: "alpha", port: apps[1]!.port }, { name: "beta", port: apps[2]!.port }],
      access_log: { path: `${dir}/access.log` },
      upstreams: [
        { service: "ledger", listen: "127.0.0.1:0" },
        { service: "ledger", listen: "127.0.0.1:0", caller: "beta" },
      ],
    });
    proxies.push(ab);
    const asAlpha = ab.upstreams.ledger!;
    const asBeta = ab.upstreams["ledger@beta"]!;
    assert(asBeta !== undefined && asBeta !== asAlpha, JSON.stringify(ab.upstreams));
    await waitFor("ledger through both listeners", async () => {
      return (await call(asAlpha, "GET", "/x")).status === 200 &&
        (await call(asBeta, "GET", "/x")).status === 200;
    });

    await applyLedgerDenyByDefault(
      dir,
      cp,
      `allow:
  - from: [beta]
`,
    );
    await callee.child.waitLine(/authorization policy applied.*service"?[=:]"?ledger/);
    const denied = await waitFor("the alpha listener to be denied", async () => {
      const r = await call(asAlpha, "GET", "/as-alpha");
      return r.status === 403 ? r : null;
    });
    assertEquals(denied.headers.get("x-skein-denied"), "default_deny");
    const line = await callee.child.waitLine(/component"?[=:]"?audit.*path"?[=:]"?\/as-alpha/);
    assertMatch(line.input!, /caller"?[=:]"?spiffe:\/\/[^ ]+\/svc\/alpha/);
    // The same destination through beta's listener: beta's certificate, so allowed, and
    // beta's pooled connections are never lent to alpha's calls (or the other way round).
    for (let i = 0; i < 5; i++) {
      assertEquals((await call(asBeta, "GET", "/as-beta")).status, 200);
      assertEquals((await call(asAlpha, "GET", "/as-alpha")).status, 403);
    }
    assertEquals(audits(callee).filter((l) => /\/as-beta/.test(l)), [], "allows not audited");
    // The access log names the local service each call was made for, denied ones included.
    const logged = await waitFor("the calls in the access log", async () => {
      const lines = (await Deno.readTextFile(`${dir}/access.log`).catch(() => ""))
        .split("\n").filter(Boolean).map((l) => JSON.parse(l));
      return lines.filter((l) => l.path === "/as-alpha").length >= 6 ? lines : null;
    });
    assert(logged.some((l) => l.path === "/as-alpha" && l.caller === "alpha" && l.status === 403));
    assert(logged.some((l) => l.path === "/as-beta" && l.caller === "beta" && l.status === 200));
    // The callee's audit denials reach the control node's dashboard with its heartbeats.
    const dash = await waitFor("the denials on the dashboard", async () => {
      const r = await testFetch(`${cp.url}/v1/dashboard`, {
        headers: { authorization: `Bearer ${cp.token}` },
      });
      const d = await r.json();
      return d.denials?.some((x: { path: string }) => x.path === "/as-alpha") ? d : null;
    });
    const denial = dash.denials.find((x: { path: string }) => x.path === "/as-alpha");
    assertEquals(denial.service, "ledger");
    assertEquals(denial.node, "vm-ledger");
    assertEquals(denial.reason, "default_deny");
    assertMatch(String(denial.caller), /\/svc\/alpha$/);
    // A RateLimit for an ExternalService (no proxy fronts it, so nobody enforces it) is
    // warned about, once per part.
    await ctlApply(
      dir,
      cp.url,
      cp.token,
      "kind: ExternalService\nname: stripe\nhosts: [api.stripe.com:443]\n---\n" +
        "kind: RateLimit\nservice: stripe\nrequests_per_second: 5\nburst: 5\n",
    );
    await callee.child.waitLine(
      /resource part not enforced.*part"?[=:]"?"?RateLimit\/stripe \(for an ExternalService\)/,
    );
    // The caller's metrics name the local service each call was made for.
    const m = await metricsText(ab);
    assertMatch(m, /skein_requests_total\{[^}]*source="beta"[^}]*destination="ledger"[^}]*\} 6/);
    assertMatch(m, /skein_requests_total\{[^}]*source="alpha"[^}]*destination="ledger"[^}]*\}/);
  } finally {
    for (const p of proxies) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
