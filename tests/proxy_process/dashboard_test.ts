/**
 * The dashboard in a real headless Chromium against `skein demo`: the link the demo prints
 * (with its read token) opens the page, which shows the services, a topology edge and charts
 * with data; a screenshot is kept as an artifact (its path is printed). Skipped without
 * Chromium.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { spawnSkein } from "../skein_cli.ts";
import { waitFor } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = await Deno.stat(CHROMIUM).then(() => true, () => false);

Deno.test({
  name: "the dashboard renders services, a topology edge and charts in headless Chromium",
  ignore: !HAVE_CHROMIUM,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { default: puppeteer } = await import("npm:puppeteer-core@24");
    const artifacts = await Deno.makeTempDir({ prefix: "skein-dashboard-artifacts-" });
    const proc = spawnSkein(["demo"]);
    let out = "";
    const dec = new TextDecoder();
    const reading = (async () => {
      for await (const c of proc.stdout) out += dec.decode(c, { stream: true });
    })();
    const errs = (async () => {
      for await (const _ of proc.stderr) { /* drained */ }
    })();
    let browser: Awaited<ReturnType<typeof puppeteer.launch>> | null = null;
    try {
      await waitFor("the demo banner", () => out.includes("working directory:"), 90_000);
      const link = out.match(/dashboard: (https:\/\/\S+\/ui\/#token=\S+)/)?.[1];
      assert(link, `no dashboard link in:\n${out}`);
      const ca = out.match(/\(CA to trust: (\S+)\)/)![1]!;
      const base = link.slice(0, link.indexOf("/ui/"));
      const token = decodeURIComponent(link.slice(link.indexOf("#token=") + 7));
      // The data the page draws, first from a plain client: wait until traffic is reported.
      const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(ca)] });
      await waitFor("traffic in the dashboard data", async () => {
        const r = await fetch(`${base}/v1/dashboard`, {
          client,
          headers: { authorization: `Bearer ${token}` },
        });
        const d = await r.json();
        return d.edges?.some((e: { source: string; destination: string }) =>
          e.source === "frontend" && e.destination === "orders"
        );
      }, 120_000);
      // No token: the page loads, its data does not.
      const bare = await fetch(`${base}/ui/`, { client });
      assertEquals(bare.status, 200);
      await bare.body?.cancel();
      const denied = await fetch(`${base}/v1/dashboard`, { client });
      assertEquals(denied.status, 401);
      await denied.body?.cancel();
      client.close();

      browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--headless=new"],
        // The demo's CA is not in the browser's store.
        acceptInsecureCerts: true,
      });
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 1800 });
      await page.goto(link, { waitUntil: "load" });
      await page.waitForSelector('#services tr[data-service="frontend"]', { timeout: 60_000 });
      await page.waitForSelector('#topology g[data-edge="frontend->orders"]', { timeout: 60_000 });
      await page.waitForSelector('[data-signals="orders"] svg[data-chart="rate"] path.line', {
        timeout: 60_000,
      });
      // Charts with data: a drawn line in every chart of a called service.
      const lines = await page.$$eval(
        '[data-signals="orders"] svg[data-chart] path.line',
        (ps) => ps.map((p) => p.getAttribute("d") ?? ""),
      );
      assert(lines.length >= 4, `charts: ${lines.length}`);
      assert(lines.some((d) => d.startsWith("M")), `empty charts: ${JSON.stringify(lines)}`);
      const services = await page.$$eval(
        "#services tr[data-service]",
        (rs) => [...new Set(rs.map((r) => r.getAttribute("data-service")))],
      );
      for (const s of ["frontend", "orders", "inventory"]) assert(services.includes(s), s);
      const edgeLabel = await page.$eval(
        '#topology g[data-edge="frontend->orders"] text',
        (t) => t.textContent ?? "",
      );
      assert(/\/s · .*% · p99/.test(edgeLabel), edgeLabel);
      const identities = await page.$eval(
        '#edges tr[data-edge="frontend->orders"]',
        (r) => r.textContent ?? "",
      );
      assert(/spiffe:\/\/[^ ]+\/svc\/frontend → spiffe:\/\/[^ ]+\/svc\/orders/.test(identities));
      // The token moved from the address bar to session storage.
      assertEquals(new URL(page.url()).hash, "");
      assertEquals(await page.evaluate(() => sessionStorage.getItem("skein-read-token")), token);
      const shot = `${artifacts}/dashboard.png`;
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`dashboard screenshot: ${shot}`);
    } finally {
      await browser?.close();
      proc.kill("SIGINT");
      await proc.status;
      await reading.catch(() => {});
      await errs.catch(() => {});
    }
  },
});
