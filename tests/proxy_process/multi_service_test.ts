/**
 * One proxy fronting two services (`alpha`, `beta`) with one certificate each: enrolled with
 * two join tokens in one file, reached over mTLS by a caller that checks each callee identity,
 * both instances registered and heartbeated with their own certificate, and a restart that
 * reuses both stored identities.
 */
import { assert, assertEquals } from "../assert.ts";
import {
  catalogInstances,
  get,
  type ProxyHandle,
  startControl,
  startProxy,
  waitFor,
} from "./helpers.ts";
import { meshClient } from "../tls_fixture.ts";
import { mtlsConnect, MtlsConnectError, spiffeIdFromSans } from "../../common/tls/mod.ts";

/** A local app whose health answer the test controls. */
function healthApp(name: string): { port: number; healthy: boolean; close: () => Promise<void> } {
  const app = { port: 0, healthy: true, close: () => server.shutdown() };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname === "/healthz") {
      return new Response(app.healthy ? "ok" : "down", { status: app.healthy ? 200 : 503 });
    }
    return new Response(name);
  });
  app.port = server.addr.port;
  return app;
}

/** The SPIFFE id the inbound at `addr` presents when asked for `servername` (or none). */
async function presented(addr: string, servername?: string): Promise<string> {
  const m = await meshClient("tester");
  const i = addr.lastIndexOf(":");
  let seen = "none";
  const socket = await mtlsConnect({
    host: addr.slice(0, i),
    port: Number(addr.slice(i + 1)),
    cert: m.certPem,
    key: m.keyPem,
    ca: m.caPem,
    expectSpiffe: (id) => {
      seen = id.uri;
      return id.kind === "service";
    },
    ...(servername !== undefined ? { servername } : {}),
  });
  const again = spiffeIdFromSans(socket.getPeerCertificate().subjectaltname)?.uri;
  socket.destroy();
  assertEquals(again, seen);
  return seen;
}

Deno.test("one proxy fronts alpha and beta with a certificate each, across a restart", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "skein-multi-" });
  const cp = await startControl(dir);
  const alpha = healthApp("alpha");
  const beta = healthApp("beta");
  const health = { http: "/healthz", interval: "200ms", unhealthy_threshold: 1 };
  const cfg = {
    node: "vm-ab",
    control: [cp.url],
    services: [
      { name: "alpha", port: alpha.port, health },
      { name: "beta", port: beta.port, health },
    ],
  };
  const running: ProxyHandle[] = [];
  try {
    // startProxy writes one join token per distinct service into one token file.
    let ab = await startProxy(dir, cfg);
    running.push(ab);
    const caller = await startProxy(dir, {
      node: "vm-caller",
      control: [cp.url],
      upstreams: [
        { service: "alpha", listen: "127.0.0.1:0" },
        { service: "beta", listen: "127.0.0.1:0" },
      ],
    });
    running.push(caller);

    await t.step("both tokens are redeemed, each for its own service", async () => {
      await ab.child.waitLine(/certificate obtained.*spiffe:\/\/skein\.local\/svc\/alpha/);
      await ab.child.waitLine(/certificate obtained.*spiffe:\/\/skein\.local\/svc\/beta/);
      const st = await Deno.stat(`${dir}/vm-ab-data/identities/beta/identity.json`);
      assertEquals(st.mode! & 0o777, 0o600);
      const ds = await Deno.stat(`${dir}/vm-ab-data/identities/beta`);
      assertEquals(ds.mode! & 0o777, 0o700);
    });

    await t.step(
      "the inbound presents the certificate of the service asked for by SNI",
      async () => {
        assertEquals(
          await presented(ab.inbound, "beta.svc.skein.local"),
          "spiffe://skein.local/svc/beta",
        );
        assertEquals(
          await presented(ab.inbound, "alpha.svc.skein.local"),
          "spiffe://skein.local/svc/alpha",
        );
        // No or an unknown name: the first service's certificate.
        assertEquals(await presented(ab.inbound), "spiffe://skein.local/svc/alpha");
        assertEquals(
          await presented(ab.inbound, "gamma.svc.skein.local"),
          "spiffe://skein.local/svc/alpha",
        );
        // A client that insists on beta without asking for it is refused, not fooled.
        const m = await meshClient("tester");
        const i = ab.inbound.lastIndexOf(":");
        const err = await mtlsConnect({
          host: ab.inbound.slice(0, i),
          port: Number(ab.inbound.slice(i + 1)),
          cert: m.certPem,
          key: m.keyPem,
          ca: m.caPem,
          expectSpiffe: "spiffe://skein.local/svc/beta",
        }).then((s) => {
          s.destroy();
          return null;
        }, (e) => e);
        assert(err instanceof MtlsConnectError && err.kind === "identity", String(err));
      },
    );

    await t.step("a caller reaches both services through its checked mTLS hop", async () => {
      await waitFor(
        "alpha through the caller",
        async () => (await get(caller.upstreams.alpha!)).body === "alpha",
      );
      await waitFor(
        "beta through the caller",
        async () => (await get(caller.upstreams.beta!)).body === "beta",
      );
      for (let i = 0; i < 5; i++) {
        assertEquals((await get(caller.upstreams.alpha!)).body, "alpha");
        assertEquals((await get(caller.upstreams.beta!)).body, "beta");
      }
    });

    await t.step("both instances are registered and heartbeats of each are accepted", async () => {
      await waitFor(
        "alpha registered passing",
        async () =>
          (await catalogInstances(cp.url, "alpha")).some((x) =>
            x.id === "vm-ab-alpha" && x.health === "passing"
          ),
      );
      await waitFor(
        "beta registered passing",
        async () =>
          (await catalogInstances(cp.url, "beta")).some((x) =>
            x.id === "vm-ab-beta" && x.health === "passing"
          ),
      );
      // A health change reaches the catalog only through beta's heartbeat (beta's certificate).
      beta.healthy = false;
      await waitFor(
        "beta critical via heartbeat",
        async () =>
          (await catalogInstances(cp.url, "beta")).some((x) =>
            x.id === "vm-ab-beta" && x.health === "critical"
          ),
      );
      beta.healthy = true;
      await waitFor(
        "beta passing again",
        async () =>
          (await catalogInstances(cp.url, "beta")).some((x) =>
            x.id === "vm-ab-beta" && x.health === "passing"
          ),
      );
      assertEquals(
        (await catalogInstances(cp.url, "alpha")).find((x) => x.id === "vm-ab-alpha")?.health,
        "passing",
      );
      assert(
        !ab.child.lines.some((l) => /heartbeat failed|registering .* got 403/.test(l)),
        ab.child.lines.join("\n"),
      );
    });

    await t.step("a restart reuses both stored identities (no token needed)", async () => {
      const st = await ab.child.stop("SIGTERM");
      assertEquals(st.code, 0);
      running.splice(running.indexOf(ab), 1);
      // The tokens are spent: a restart that tried to redeem them would fail.
      ab = await startProxy(dir, cfg);
      running.push(ab);
      await ab.child.waitLine(/certificate loaded.*svc\/alpha/);
      await ab.child.waitLine(/certificate loaded.*svc\/beta/);
      assert(!ab.child.lines.some((l) => /certificate obtained/.test(l)));
      assertEquals(
        await presented(ab.inbound, "beta.svc.skein.local"),
        "spiffe://skein.local/svc/beta",
      );
      await waitFor(
        "beta through the caller after the restart",
        async () => (await get(caller.upstreams.beta!)).body === "beta",
      );
      await waitFor(
        "alpha through the caller after the restart",
        async () => (await get(caller.upstreams.alpha!)).body === "alpha",
      );
    });
  } finally {
    for (const p of running) await p.child.stop("SIGTERM");
    await cp.child.stop("SIGTERM");
    await alpha.close();
    await beta.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
