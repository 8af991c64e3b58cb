/**
 * Egress through `ExternalService` with real processes: a control node, a proxy whose apps call
 * a local HTTPS server standing in for an external API (its own CA, named by `tls.ca_file`),
 * through an upstream listener and through `http_proxy`; hostname verification, pooling,
 * Authorization at the calling proxy, and `egress: registered_only` on a second proxy.
 * @module
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  applyResources,
  type Control,
  type ProxyHandle,
  rawGet,
  startApp,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";
import { makePki, startExternalApi } from "./external_api.ts";

const AUDIT_DENY = /component"?[=:]"?audit.*decision"?[=:]"?deny/;

Deno.test({
  name: "egress: apps reach an ExternalService over TLS the proxy originates, as allowed",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "skein-egress-" });
    const pki = await makePki(dir, ["localhost", "other.example"]);
    const api = startExternalApi(pki.server("localhost"));
    // Serves a valid certificate of the same CA, but for another name.
    const impostor = startExternalApi(pki.server("other.example"));
    // The right name, but no ca_file names its CA.
    const privateCa = startExternalApi(pki.server("localhost"));
    const payments = startApp("payments");
    const reports = startApp("reports");
    let cp: Control | null = null;
    const proxies: ProxyHandle[] = [];
    try {
      cp = await startControl(dir);
      await applyResources(cp.url, [
        {
          kind: "ExternalService",
          name: "stripe",
          hosts: [`localhost:${api.port}`],
          tls: { ca_file: pki.caFile },
        },
        {
          kind: "ExternalService",
          name: "impostor",
          hosts: [`localhost:${impostor.port}`],
          tls: { ca_file: pki.caFile },
        },
        { kind: "ExternalService", name: "roots", hosts: [`localhost:${privateCa.port}`] },
        {
          kind: "ExternalService",
          name: "nocafile",
          hosts: ["localhost:1"],
          tls: { ca_file: `${dir}/missing.pem` },
        },
        // vm-strict (below) calls as its node name, since it fronts no service.
        { kind: "Authorization", service: "stripe", allow: [{ from: ["payments", "vm-strict"] }] },
      ]);
      const pay = await startProxy(dir, {
        node: "vm-pay",
        control: [cp.url],
        // One data plane, so one pool: the pooling check counts exact connections.
        workers: 1,
        http_proxy: "127.0.0.1:0",
        access_log: { path: `${dir}/access.log` },
        services: [
          { name: "payments", port: payments.port },
          { name: "reports", port: reports.port },
        ],
        upstreams: [
          { service: "stripe", listen: "127.0.0.1:0" },
          { service: "stripe", listen: "127.0.0.1:0", caller: "reports" },
          { service: "impostor", listen: "127.0.0.1:0" },
          { service: "roots", listen: "127.0.0.1:0" },
          { service: "nocafile", listen: "127.0.0.1:0" },
        ],
      });
      proxies.push(pay);
      const viaUpstream = pay.upstreams["stripe"]!;

      await t.step("an upstream listener reaches the external host with its own Host", async () => {
        const r = await waitFor("the ExternalService to be routed", async () => {
          const res = await fetch(`http://${viaUpstream}/v1/charges?limit=3`);
          const body = await res.text();
          return res.status === 200 ? body : null;
        });
        const seen = JSON.parse(r);
        assertEquals(seen.target, "/v1/charges?limit=3");
        assertEquals(seen.host, `localhost:${api.port}`, "the host's name, not the listener's");
        assert(!seen.names.includes("x-skein-destination"), "no mesh header leaves the mesh");
      });

      await t.step("a method override does not reach a host an Authorization guards", async () => {
        const res = await fetch(`http://${viaUpstream}/v1/customers/c1`, {
          headers: { "x-http-method-override": "DELETE", "x-method-override": "DELETE" },
        });
        assertEquals(res.status, 200);
        const seen = JSON.parse(await res.text());
        assertEquals(seen.names.filter((n: string) => n.includes("method")), []);
      });

      await t.step("http_proxy reaches it by Host, and by an absolute-form target", async () => {
        const byHost = await rawGet(pay.httpProxy!, `localhost:${api.port}`, "/v1/by-host");
        assertEquals(byHost.status, 200, byHost.body);
        assertEquals(JSON.parse(byHost.body).target, "/v1/by-host");
        const abs = await rawGet(
          pay.httpProxy!,
          "ignored.example",
          `http://localhost:${api.port}/v1/absolute`,
        );
        assertEquals(abs.status, 200, abs.body);
        const seen = JSON.parse(abs.body);
        assertEquals(seen.target, "/v1/absolute", "sent in origin-form");
        assertEquals(seen.host, `localhost:${api.port}`);
      });

      await t.step("several requests reuse one pooled TLS connection", async () => {
        for (let i = 0; i < 8; i++) {
          const res = await fetch(`http://${viaUpstream}/v1/pooled/${i}`);
          assertEquals(res.status, 200);
          await res.body?.cancel();
        }
        assert(api.requests.length >= 11, `requests: ${api.requests.length}`);
        assertEquals(api.accepted, 1, "every request so far rode the first TLS connection");
      });

      await t.step("a certificate for another name fails the call with a clear 502", async () => {
        const res = await fetch(`http://${pay.upstreams["impostor"]}/v1/x`);
        const body = await res.text();
        assertEquals(res.status, 502, body);
        assertEquals(res.headers.get("x-skein-error"), "upstream_connect_failure");
        assertMatch(body, /not valid for name "localhost"/);
        assertEquals(impostor.requests.length, 0, "no request was sent over it");
      });

      await t.step(
        "without a ca_file only built-in roots count; an unreadable one fails",
        async () => {
          const roots = await fetch(`http://${pay.upstreams["roots"]}/v1/x`);
          const rootsBody = await roots.text();
          assertEquals(roots.status, 502, rootsBody);
          assertMatch(rootsBody, /UnknownIssuer/);
          assertEquals(privateCa.requests.length, 0);
          const missing = await fetch(`http://${pay.upstreams["nocafile"]}/v1/x`);
          const missingBody = await missing.text();
          assertEquals(missing.status, 502, missingBody);
          assertEquals(missing.headers.get("x-skein-error"), "upstream_connect_failure");
          assertMatch(missingBody, /cannot read ca_file .*missing\.pem/);
        },
      );

      await t.step(
        "a local service the Authorization does not name gets 403, audited",
        async () => {
          const before = api.requests.length;
          const res = await fetch(`http://${pay.upstreams["stripe@reports"]}/v1/charges`);
          const body = await res.text();
          assertEquals(res.status, 403, body);
          assertEquals(res.headers.get("x-skein-error"), "denied");
          assertEquals(res.headers.get("x-skein-denied"), "default_deny");
          assertEquals(res.headers.get("x-skein-proxy"), "vm-pay");
          const line = await pay.child.waitLine(AUDIT_DENY);
          assertMatch(line.input!, /caller"?[=:]"?spiffe:\/\/[^ ]+\/svc\/reports/);
          assertMatch(line.input!, /service"?[=:]"?stripe/);
          assertEquals(api.requests.length, before, "the denied call never left");
        },
      );

      await t.step("metrics and /endpoints show the external destination", async () => {
        const m = await (await fetch(`http://${pay.admin}/metrics`)).text();
        assertMatch(m, /skein_requests_total\{[^}]*destination="stripe"[^}]*status_class="2xx"/);
        const eps = await (await fetch(`http://${pay.admin}/endpoints`)).text();
        assertMatch(eps, new RegExp(`stripe@localhost:${api.port}`));
      });

      await t.step("the access log records external calls like any destination's", async () => {
        const line = await waitFor("an access-log line of a call to stripe", async () => {
          const text = await Deno.readTextFile(`${dir}/access.log`).catch(() => "");
          return text.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((r) =>
            r.destination === "stripe" && r.status === 200
          );
        });
        assertEquals(line.side, "client");
        assertEquals(line.caller, "payments");
        assertEquals(line.endpoint, `stripe@localhost:${api.port}`);
        assertEquals(line.error, null);
      });

      await t.step(
        "with the default egress: open, an unknown Host is answered as before",
        async () => {
          const r = await rawGet(pay.httpProxy!, "unknown.example", "/");
          assertEquals(r.status, 404, r.body);
          assertEquals(r.headers.get("x-skein-error"), "no_route");
        },
      );

      await t.step(
        "egress: registered_only refuses unknown hosts, mesh services still work",
        async () => {
          const strict = await startProxy(dir, {
            node: "vm-strict",
            control: [cp!.url],
            egress: "registered_only",
            http_proxy: "127.0.0.1:0",
          });
          proxies.push(strict);
          const mesh = await waitFor("payments through the mesh", async () => {
            const r = await rawGet(strict.httpProxy!, "payments", "/");
            return r.status === 200 ? r : null;
          });
          assertEquals(mesh.body, "payments");
          const ext = await rawGet(strict.httpProxy!, `localhost:${api.port}`, "/v1/strict");
          assertEquals(ext.status, 200, "a registered ExternalService host is allowed");
          // Its two worker threads report external destinations to the admin pages.
          const eps = await (await fetch(`http://${strict.admin}/endpoints`)).text();
          assertMatch(eps, new RegExp(`stripe@localhost:${api.port}`));
          const m = await fetch(`http://${strict.admin}/metrics`);
          assertEquals(m.status, 200);
          assertMatch(await m.text(), /skein_requests_total\{[^}]*destination="stripe"/);
          const denied = await rawGet(strict.httpProxy!, "unknown.example", "/secret?token=x");
          assertEquals(denied.status, 403, denied.body);
          assertEquals(denied.headers.get("x-skein-error"), "egress_denied");
          const line = await strict.child.waitLine(AUDIT_DENY);
          assertMatch(line.input!, /reason"?[=:]"?unregistered_destination/);
          assertMatch(line.input!, /service"?[=:]"?unknown\.example/);
          assert(!line.input!.includes("token=x"), "the query stays out of the audit line");
        },
      );
    } finally {
      for (const p of proxies.reverse()) await p.child.stop();
      await cp?.child.stop();
      api.close();
      impostor.close();
      privateCa.close();
      await payments.close();
      await reports.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
