/**
 * gRPC through real `skein proxy` processes with a real gRPC client and servers
 * (`@grpc/grpc-js`): a caller proxy in front of two instances of a `protocol: grpc` service,
 * each behind its own proxy, the hops between proxies HTTP/2 over mTLS.
 *
 * Run by `grpc_test.ts` in a child `deno test`, not picked up by the suite itself: the
 * grpc-js client and servers here sit on Deno's `node:http2`, whose nghttp2 can abort the
 * whole process while a connection closes, which would end every other test of the run.
 */
import http2 from "node:http2";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  applyResources,
  metricsText,
  type ProxyHandle,
  startControl,
  startProxy,
  waitEligible,
  waitFor,
} from "./helpers.ts";
import { chat, echoClient, grpc, serverStream, startGrpcApp, unary } from "./grpc_apps.ts";

/** Sends one gRPC-framed request over a raw h2 client; the response head and trailers. */
async function rawGrpc(
  addr: string,
  path: string,
  extra: Record<string, string>,
): Promise<{ head: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders | null }> {
  const client = http2.connect(`http://${addr}`);
  client.on("error", () => {});
  try {
    const req = client.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...extra,
    });
    let trailers: http2.IncomingHttpHeaders | null = null;
    req.on("trailers", (t) => trailers = t);
    req.on("data", () => {});
    // One message of one byte: flag 0, length 1, "x".
    req.end(new Uint8Array([0, 0, 0, 0, 1, 0x78]));
    const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      req.on("response", resolve);
      req.on("error", reject);
    });
    if (!req.closed) await new Promise((r) => req.on("close", r));
    return { head, trailers };
  } finally {
    client.close();
  }
}

/** `skein_requests_total` of `destination` by status class, summed over the other labels. */
function requestsOf(metrics: string, destination: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("skein_requests_total{")) continue;
    if (!line.includes(`destination="${destination}"`)) continue;
    const cls = /status_class="([^"]+)"/.exec(line)?.[1];
    if (cls !== undefined) out[cls] = (out[cls] ?? 0) + Number(line.split(" ").pop());
  }
  return out;
}

Deno.test("gRPC unary and streaming calls cross two proxies, balanced per call, retried, timed", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-grpc-" });
  const cp = await startControl(dir);
  const apps = [await startGrpcApp("a"), await startGrpcApp("b")];
  const proxies: ProxyHandle[] = [];
  let client: grpc.Client | null = null;
  const others: grpc.Client[] = [];
  try {
    for (const [i, a] of apps.entries()) {
      proxies.push(
        await startProxy(dir, {
          node: `vm-${i + 1}`,
          control: [cp.url],
          services: [{ name: "greeter", port: a.port, protocol: "grpc" }],
        }),
      );
    }
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      services: [{ name: "web", port: 1 }],
      upstreams: [
        { service: "greeter", listen: "127.0.0.1:0" },
        { service: "ghost", listen: "127.0.0.1:0" },
      ],
    });
    proxies.push(caller);
    await waitEligible(caller, "greeter", 2);
    const addr = caller.upstreams["greeter"]!;
    client = echoClient(addr);

    await t.step(
      "unary calls on one channel are balanced per call over both instances",
      async () => {
        for (let i = 0; i < 20; i++) {
          const r = await unary(client, "Unary", `m${i}`);
          assertEquals(r.error, null);
          assertMatch(r.reply!, new RegExp(`^[ab]:m${i}$`));
        }
        const [a, b] = [apps[0]!.hits["Unary"] ?? 0, apps[1]!.hits["Unary"] ?? 0];
        assertEquals(a + b, 20);
        assert(a > 0 && b > 0, `one channel reached both instances (a=${a}, b=${b})`);
      },
    );

    await t.step("a server-streaming call gets every message and an OK status", async () => {
      const r = await serverStream(client, "s");
      assertEquals(r.code, grpc.status.OK);
      assertEquals(r.messages.length, 5);
      assertMatch(r.messages.join(","), /^([ab]):s:0,\1:s:1,\1:s:2,\1:s:3,\1:s:4$/);
    });

    await t.step("a bidirectional call streams both ways through the proxies", async () => {
      const got = await chat(client, ["one", "two", "three"]);
      assertEquals(got.length, 3);
      assertMatch(got.join(","), /^([ab]):one,\1:two,\1:three$/);
    });

    await t.step("UNAVAILABLE from one instance is retried on the other", async () => {
      apps[0]!.flakyFails = true;
      for (let i = 0; i < 40 && (apps[0]!.hits["Flaky"] ?? 0) < 3; i++) {
        const r = await unary(client, "Flaky", `f${i}`);
        assertEquals(r.error?.code ?? grpc.status.OK, grpc.status.OK, r.error?.details);
        assertEquals(r.reply, `b:f${i}`);
      }
      assert(
        (apps[0]!.hits["Flaky"] ?? 0) >= 3,
        "the failing instance was tried (and retried away)",
      );
      apps[0]!.flakyFails = false;
    });

    await t.step(
      "grpc-timeout is passed on as the deadline and the call ends DEADLINE_EXCEEDED",
      async () => {
        // A raw client without a deadline of its own. The proxies pass the time left on, so the
        // gRPC server (which keeps deadlines too) and the proxy race to answer; either way the
        // call ends DEADLINE_EXCEEDED. h2_test.ts has an app that keeps none: the proxy answers.
        const r = await rawGrpc(addr, "/test.Echo/Slow", { "grpc-timeout": "300m" });
        assertEquals(Number(r.head[":status"]), 200);
        const status = r.head["grpc-status"] ?? r.trailers?.["grpc-status"];
        assertEquals(status, String(grpc.status.DEADLINE_EXCEEDED));
        const slow = apps.find((a) => (a.hits["Slow"] ?? 0) > 0)!;
        assert(slow.slowDeadlineMs !== null && slow.slowDeadlineMs <= 300, "deadline sent on");
        // And the real client sees the status it expects.
        const g = await unary(client, "Slow", "x", 400);
        assertEquals(g.error?.code, grpc.status.DEADLINE_EXCEEDED);
      },
    );

    await t.step(
      "errors the proxy makes are gRPC errors; grpc-status decides the metrics",
      async () => {
        const ghost = echoClient(caller.upstreams["ghost"]!);
        others.push(ghost);
        const none = await unary(ghost, "Unary", "x");
        assertEquals(none.error?.code, grpc.status.UNAVAILABLE);
        assertEquals(none.error?.metadata.get("x-skein-error"), ["no_endpoint"]);
        const before = requestsOf(await metricsText(caller), "greeter");
        const failed = await unary(client, "Fail", "x");
        assertEquals(failed.error?.code, grpc.status.INTERNAL);
        assertEquals(failed.error?.details, "broken on purpose");
        // HTTP 200 on the wire, INTERNAL in grpc-status: counted as the 500 it stands for.
        const after = requestsOf(await metricsText(caller), "greeter");
        assertEquals(after["5xx"] ?? 0, (before["5xx"] ?? 0) + 1);
        assertEquals(after["2xx"] ?? 0, before["2xx"] ?? 0);
      },
    );

    await t.step("Authorization allows and denies by /package.Service/Method", async () => {
      await applyResources(cp.url, [{
        kind: "Authorization",
        service: "greeter",
        default: "deny",
        allow: [{ from: ["web"], paths: ["/test.Echo/Unary"] }],
      }]);
      await waitFor("the denial to arrive", async () => {
        const r = await unary(client, "Fail", "x");
        return r.error?.code === grpc.status.PERMISSION_DENIED;
      });
      const fails = () => (apps[0]!.hits["Fail"] ?? 0) + (apps[1]!.hits["Fail"] ?? 0);
      const failsBefore = fails();
      const ok = await unary(client, "Unary", "still");
      assertEquals(ok.error, null);
      assertEquals((await serverStream(client, "x")).code, grpc.status.PERMISSION_DENIED);
      const denied = await unary(client, "Fail", "x");
      assertEquals(denied.error?.metadata.get("x-skein-error"), ["denied"]);
      assertEquals(fails(), failsBefore, "no denied call reached an app");
    });
  } finally {
    client?.close();
    for (const c of others) c.close();
    // The clients' connections end before the proxies stop: a client still closing when the
    // proxy's GOAWAY and close arrive can crash Deno's node:http2 (an nghttp2 assertion in
    // find_stream_on_goaway_func), taking this test process down.
    const caller = proxies[proxies.length - 1];
    if (caller !== undefined) {
      await waitFor("the clients' connections to the caller to close", async () => {
        const m = await metricsText(caller);
        const line = m.split("\n").find((l) =>
          l.startsWith("skein_active_connections{") && l.includes("outbound")
        );
        return line !== undefined && Number(line.split(" ").pop()) === 0;
      }).catch(() => {});
    }
    for (const p of proxies.reverse()) await p.child.stop();
    await cp.child.stop();
    for (const a of apps) await a.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
