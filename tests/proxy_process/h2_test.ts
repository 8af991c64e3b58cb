/**
 * HTTP/2 through two real `skein proxy` processes (caller -> mTLS -> callee -> app): h2c with
 * prior knowledge from curl and nghttp on an upstream listener, trailers carried back, and
 * HTTP/1.1 still served on the same port; the app (`protocol: http2`) gets HTTP/2.
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  metricsText,
  type ProxyHandle,
  startControl,
  startProxy,
  waitEligible,
} from "./helpers.ts";
import { have, run, startDualApp, startH1App } from "./h2_apps.ts";

Deno.test("h2c from curl and nghttp crosses two proxies as HTTP/2, HTTP/1 on the same port too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-h2-" });
  const cp = await startControl(dir);
  const app = await startDualApp("echo");
  const proxies: ProxyHandle[] = [];
  try {
    proxies.push(
      await startProxy(dir, {
        node: "vm-echo",
        control: [cp.url],
        services: [{ name: "echo", port: app.port, protocol: "http2" }],
      }),
    );
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      services: [{ name: "web", port: 1 }],
      upstreams: [{ service: "echo", listen: "127.0.0.1:0" }],
      http_proxy: "127.0.0.1:0",
    });
    proxies.push(caller);
    await waitEligible(caller, "echo", 1);
    const addr = caller.upstreams["echo"]!;

    // http_proxy: the :authority names the service, as Host does on HTTP/1.1.
    const viaProxy = await run("curl", [
      "-sS",
      "--http2-prior-knowledge",
      "-D",
      "-",
      "-H",
      "host: echo",
      `http://${caller.httpProxy}/via-proxy`,
    ]);
    assertEquals(viaProxy.code, 0, viaProxy.stderr);
    assertMatch(viaProxy.stdout, /^HTTP\/2 200/);
    assertMatch(viaProxy.stdout, /echo \/via-proxy/);

    // curl with prior knowledge: HTTP/2 end to end.
    const c = await run("curl", [
      "-sS",
      "--http2-prior-knowledge",
      "-D",
      "-",
      "-H",
      "x-skein-caller: spiffe://evil/svc/admin",
      `http://${addr}/hello`,
    ]);
    assertEquals(c.code, 0, c.stderr);
    assertMatch(c.stdout, /^HTTP\/2 200/);
    assertMatch(c.stdout, /\r\n\r\necho \/hello/);
    // curl -D prints the trailers after the body.
    assertMatch(c.stdout, /x-app-trailer: echo/);
    assertEquals(app.h2, ["/via-proxy", "/hello"], "the app got the requests over HTTP/2");
    // The callee's proxy drops a forged caller and names the verified one.
    assertEquals(app.lastH2Headers!["x-skein-caller"], "spiffe://skein.local/svc/web");
    assertEquals(app.lastH2Headers!["x-skein-destination"], "echo");

    // A POST body and the trailers, seen by nghttp.
    if (await have("nghttp")) {
      const dataFile = `${dir}/body.txt`;
      await Deno.writeTextFile(dataFile, "payload-1");
      const n = await run("nghttp", ["-v", "-d", dataFile, `http://${addr}/post`]);
      assertEquals(n.code, 0, n.stderr + n.stdout);
      assertMatch(n.stdout, /:status: 200/);
      assertMatch(n.stdout, /x-app-trailer: echo/, "the app's trailer reached the client");
      assertMatch(n.stdout, /echo echo payload-1/);
    } else {
      console.warn("nghttp not installed (apt-get install nghttp2-client): part skipped");
    }
    assert(app.h2.includes("/post") || !(await have("nghttp")));

    // A body far over the replay buffer (64 KiB) streams through both hops whole, both ways.
    const big = "0123456789abcdef".repeat(64 * 1024); // 1 MiB of text
    await Deno.writeTextFile(`${dir}/big.txt`, big);
    const up = await run("curl", [
      "-sS",
      "--http2-prior-knowledge",
      "--data-binary",
      `@${dir}/big.txt`,
      `http://${addr}/big`,
    ]);
    assertEquals(up.code, 0, up.stderr);
    assertEquals(up.stdout.length, "echo echo ".length + big.length);
    assert(up.stdout === `echo echo ${big}`, "the 1 MiB body came back unchanged");

    // HTTP/1.1 on the same upstream port still works; the callee speaks HTTP/2 to the app
    // (declared http2) for it too.
    const r = await fetch(`http://${addr}/plain`, { method: "POST", body: "h1-body" });
    assertEquals(r.status, 200);
    assertEquals(await r.text(), "echo echo h1-body");
    assertEquals(app.h1, [], "no HTTP/1.1 reached the app");
    assertEquals(app.h2.at(-1), "/plain");

    // A gRPC call's grpc-timeout is the proxy's deadline: an app that never answers (and keeps
    // no deadline of its own) is cut off by the proxy, which answers DEADLINE_EXCEEDED.
    const hung = await run("curl", [
      "-sS",
      "--http2-prior-knowledge",
      "-D",
      "-",
      "-o",
      "/dev/null",
      "--max-time",
      "20",
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      "-H",
      "grpc-timeout: 300m",
      "--data-binary",
      "x",
      `http://${addr}/hang`,
    ]);
    assertEquals(hung.code, 0, hung.stderr);
    assertMatch(hung.stdout, /^HTTP\/2 200/);
    assertMatch(hung.stdout, /grpc-status: 4\r\n/);
    assertMatch(hung.stdout, /x-skein-error: upstream_timeout/);

    // Requests are counted as for HTTP/1.
    const m = await metricsText(caller);
    assertMatch(
      m,
      /skein_requests_total\{[^}]*destination="echo"[^}]*status_class="2xx"[^}]*\} [3-9]/,
    );
    // h2 streams count as the requests a worker served (4 over HTTP/2, 1 over HTTP/1.1 here).
    const perWorker = m.split("\n").filter((l) => l.startsWith("skein_worker_requests_total{"))
      .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
    assert(perWorker >= 5, `skein_worker_requests_total counts h2 streams (got ${perWorker})`);
  } finally {
    for (const p of proxies.reverse()) await p.child.stop();
    await cp.child.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("an h2c client reaches an HTTP/1.1 app (protocol: http) through two proxies, trailers too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-h2-h1-" });
  const cp = await startControl(dir);
  const app = await startH1App("plain");
  const proxies: ProxyHandle[] = [];
  try {
    proxies.push(
      await startProxy(dir, {
        node: "vm-plain",
        control: [cp.url],
        services: [{ name: "plain", port: app.port }],
      }),
    );
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      services: [{ name: "web", port: 1 }],
      upstreams: [{ service: "plain", listen: "127.0.0.1:0" }],
    });
    proxies.push(caller);
    await waitEligible(caller, "plain", 1);
    const addr = caller.upstreams["plain"]!;
    const c = await run("curl", [
      "-sS",
      "--http2-prior-knowledge",
      "-D",
      "-",
      "--data-binary",
      "abc",
      `http://${addr}/up`,
    ]);
    assertEquals(c.code, 0, c.stderr);
    assertMatch(c.stdout, /^HTTP\/2 200/);
    assertMatch(c.stdout, /\r\n\r\nplain echo abc/);
    assertMatch(c.stdout, /x-app-trailer: plain/, "the chunked trailer came back as an h2 trailer");
    assertEquals(app.seen, ["HTTP/1.1 POST /up"], "the app was called over HTTP/1.1");
  } finally {
    for (const p of proxies.reverse()) await p.child.stop();
    await cp.child.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
