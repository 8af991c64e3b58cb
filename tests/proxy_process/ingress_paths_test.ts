/**
 * An ingress route's path prefix holds against paths an app resolves differently from their
 * bytes (dot segments, escaped dots, doubled slashes), with real processes: a gateway that
 * routes only `/public` to a service whose app (`Deno.serve`, which resolves paths as URL
 * parsers do) also serves `/private`.
 * @module
 */
import { assertEquals, assertMatch } from "../assert.ts";
import { createJoinToken } from "../skein_cli.ts";
import { type ProxyHandle, rawGet, startControl, startProxy, waitEligible } from "./helpers.ts";

Deno.test("an ingress path_prefix cannot be left with dot segments: the app gets the routed path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-ingress-paths-" });
  const cp = await startControl(dir);
  const seen: string[] = [];
  const app = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path !== "/healthz") seen.push(path);
    return new Response(path);
  });
  const proxies: ProxyHandle[] = [];
  try {
    proxies.push(
      await startProxy(dir, {
        node: "vm-site",
        control: [cp.url],
        workers: 1,
        services: [{ name: "site", port: app.addr.port }],
      }),
    );
    await Deno.writeTextFile(
      `${dir}/gw.token`,
      await createJoinToken(cp.url, cp.token, "edge", "1h", "gateway"),
    );
    const gw = await startProxy(dir, {
      node: "gw",
      control: [cp.url],
      token_file: `${dir}/gw.token`,
      gateway: "edge",
      workers: 1,
      ingress: [{ listen: "127.0.0.1:0", routes: [{ path_prefix: "/public", service: "site" }] }],
    });
    proxies.push(gw);
    const [plain] = gw.ingress as [string];
    await waitEligible(gw, "site", 1);

    const ok = await rawGet(plain, "shop.example.com", "/public/a");
    assertEquals([ok.status, ok.body], [200, "/public/a"]);
    // Paths that an app reads as /private are not taken by the /public route.
    for (const path of ["/public/../private/key", "/public/%2e%2e/private/key"]) {
      const r = await rawGet(plain, "shop.example.com", path);
      assertEquals([path, r.status, r.body.includes("/private")], [path, 404, false]);
      assertMatch(r.headers.get("x-skein-error") ?? "", /no_route/);
    }
    // An encoded slash is refused: servers disagree on whether it separates segments.
    const slash = await rawGet(plain, "shop.example.com", "/public/..%2fprivate/key");
    assertEquals(slash.status, 400);
    // A path that normalizes into the prefix is served, as the path that was routed.
    const doubled = await rawGet(plain, "shop.example.com", "//public/./b/../c");
    assertEquals([doubled.status, doubled.body], [200, "/public/c"]);
    assertEquals(seen.filter((p) => !p.startsWith("/public/")), [], "only /public reached the app");
  } finally {
    for (const p of proxies.reverse()) await p.child.stop();
    await app.shutdown();
    await cp.child.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
