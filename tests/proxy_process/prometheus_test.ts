/**
 * A real Prometheus scrapes a control node (HTTPS, with a read token) and two proxies (their
 * admin listeners): every target is up and has `skein_` series, and `promtool check metrics`
 * finds nothing wrong with any of the pages. Skipped when Prometheus is not installed.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { createJoinToken } from "../skein_cli.ts";
import { sharedSeed, testFetch } from "../tls_fixture.ts";
import { Child, type ProxyHandle, startControl, startProxy, waitFor } from "./helpers.ts";
import { freePort } from "../control_process/cluster.ts";

const have = (cmd: string) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null", stderr: "null" })
    .outputSync().success;
const HAVE_PROMETHEUS = have("prometheus") && have("promtool");

/** Runs `promtool check metrics` on `text`; returns its output (empty when clean) and status. */
async function promtool(text: string): Promise<{ ok: boolean; out: string }> {
  const p = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const o = await p.output();
  const dec = new TextDecoder();
  return { ok: o.success, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

Deno.test({
  name: "Prometheus scrapes every proxy and control node: up is 1 with skein_ series",
  ignore: !HAVE_PROMETHEUS,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "skein-prom-" });
    const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
      return new Response("ok");
    });
    const cp = await startControl(dir);
    const proxies: ProxyHandle[] = [];
    let prom: Child | null = null;
    try {
      for (const s of ["ledger", "billing"]) {
        await Deno.writeTextFile(`${dir}/${s}.token`, await createJoinToken(cp.url, cp.token, s));
      }
      proxies.push(
        await startProxy(dir, {
          node: "vm-ledger",
          control: [cp.url],
          token_file: `${dir}/ledger.token`,
          services: [{ name: "ledger", port: app.addr.port }],
        }),
      );
      proxies.push(
        await startProxy(dir, {
          node: "vm-billing",
          control: [cp.url],
          token_file: `${dir}/billing.token`,
          services: [{ name: "billing", port: 1 }],
          upstreams: [{ service: "ledger", listen: "127.0.0.1:0" }],
        }),
      );
      const up = proxies[1]!.upstreams.ledger!;
      await waitFor("traffic through the mesh", async () => {
        const r = await fetch(`http://${up}/`);
        await r.body?.cancel();
        return r.status === 200;
      });

      // promtool on every page as a scraper gets it.
      for (const p of proxies) {
        const r = await promtool(await (await fetch(`http://${p.admin}/metrics`)).text());
        assert(r.ok && r.out.trim() === "", `proxy ${p.admin}: ${r.out}`);
      }
      const cm = await testFetch(`${cp.url}/metrics`, {
        headers: { authorization: `Bearer ${cp.token}` },
      });
      assertEquals(cm.status, 200);
      const cr = await promtool(await cm.text());
      assert(cr.ok && cr.out.trim() === "", `control: ${cr.out}`);

      const seed = await sharedSeed();
      await Deno.writeTextFile(`${dir}/token`, cp.token);
      const controlHost = new URL(cp.url).host;
      const config = [
        "global: { scrape_interval: 1s, scrape_timeout: 900ms }",
        "scrape_configs:",
        "  - job_name: skein-proxy",
        `    static_configs: [{ targets: [${proxies.map((p) => `"${p.admin}"`).join(", ")}] }]`,
        "  - job_name: skein-control",
        "    scheme: https",
        `    tls_config: { ca_file: "${seed.certFile}" }`,
        `    authorization: { credentials_file: "${dir}/token" }`,
        `    static_configs: [{ targets: ["${controlHost}"] }]`,
        "",
      ].join("\n");
      await Deno.writeTextFile(`${dir}/prometheus.yml`, config);
      const port = freePort();
      prom = new Child(
        new Deno.Command("prometheus", {
          args: [
            `--config.file=${dir}/prometheus.yml`,
            `--storage.tsdb.path=${dir}/prom-data`,
            `--web.listen-address=127.0.0.1:${port}`,
          ],
          stdout: "piped",
          stderr: "piped",
        }).spawn(),
      );
      const query = async (q: string) => {
        const r = await fetch(
          `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`,
        );
        const body = await r.json();
        return body.data.result as { metric: Record<string, string>; value: [number, string] }[];
      };
      const ups = await waitFor("every target up", async () => {
        const r = await query("up");
        return r.length === 3 && r.every((x) => x.value[1] === "1") ? r : null;
      }, 60_000);
      assertEquals(ups.map((u) => u.metric.job).sort(), [
        "skein-control",
        "skein-proxy",
        "skein-proxy",
      ]);
      const series = await waitFor("skein_ series from every target", async () => {
        const r = await query('count by (instance) ({__name__=~"skein_.+"})');
        return r.length === 3 ? r : null;
      }, 60_000);
      for (const s of series) assert(Number(s.value[1]) > 0, JSON.stringify(s));
    } finally {
      await prom?.stop();
      for (const p of proxies) await p.child.stop();
      await cp.child.stop();
      await app.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
