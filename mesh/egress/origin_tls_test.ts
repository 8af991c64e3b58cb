import { assertEquals, assertMatch, assertRejects } from "../../tests/assert.ts";
import {
  makeChainedPki,
  makePki,
  startExternalApi,
} from "../../tests/proxy_process/external_api.ts";
import { connectOrigin, withOriginDialer, withOrigins } from "./origin_tls.ts";

Deno.test("connectOrigin verifies the server's name and its chain to the ca_file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-origin-" });
  const other = await Deno.makeTempDir({ prefix: "skein-origin-other-" });
  const pki = await makePki(dir, ["localhost", "other.example"]);
  const otherPki = await makePki(other, []);
  const ca = await Deno.readTextFile(pki.caFile);
  const otherCa = await Deno.readTextFile(otherPki.caFile);
  const good = startExternalApi(pki.server("localhost"));
  const wrong = startExternalApi(pki.server("other.example"));
  try {
    const ep = (port: number) => ({ key: `x@localhost:${port}`, hostname: "localhost", port });
    const c = await connectOrigin(ep(good.port), { serverName: "localhost", caPem: ca });
    c.close();
    // Any certificate of a bundle will do.
    const b = await connectOrigin(ep(good.port), { serverName: "localhost", caPem: otherCa + ca });
    b.close();
    await assertRejects(
      () => connectOrigin(ep(wrong.port), { serverName: "localhost", caPem: ca }),
      Error,
      'not valid for name "localhost"',
    );
    await assertRejects(
      () => connectOrigin(ep(good.port), { serverName: "localhost", caPem: otherCa }),
      Error,
      "UnknownIssuer",
    );
    await assertRejects(
      () => connectOrigin(ep(good.port), { serverName: "localhost", caPem: null }),
      Error,
      "UnknownIssuer",
    );
    await assertRejects(
      () => connectOrigin(ep(good.port), { serverName: "localhost", caPem: "not pem" }),
      Error,
      "holds no PEM certificate",
    );
    // withOrigins dials marked endpoints itself and leaves the rest to the mesh dialer.
    const meshDialed: string[] = [];
    const dial = withOrigins((e) => {
      meshDialed.push(e.key);
      return Promise.reject(new Error("mesh"));
    });
    const oc = await dial({ ...ep(good.port), origin: { serverName: "localhost", caPem: ca } });
    oc.close();
    await assertRejects(() => dial({ key: "m", hostname: "127.0.0.1", port: 1 }), Error, "mesh");
    assertEquals(meshDialed, ["m"]);
  } finally {
    good.close();
    wrong.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("connectOrigin fails at once with the CA file's error", async () => {
  const e = await connectOrigin({ key: "k", hostname: "localhost", port: 1 }, {
    serverName: "localhost",
    caPem: null,
    caError: "cannot read ca_file /x",
  }).then(() => null, (e) => e as Error);
  assertMatch(e?.message ?? "", /cannot read ca_file \/x/);
});

Deno.test("withOriginDialer() keeps a pool's options and wraps its connect", () => {
  const now = () => 1;
  const o = withOriginDialer({ now, maxAgeMs: 5 });
  assertEquals([o.now, o.maxAgeMs, typeof o.connect], [now, 5, "function"]);
});

Deno.test("connectOrigin accepts a chain through an intermediate to the ca_file's root", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-origin-chain-" });
  const pki = await makeChainedPki(dir, "localhost");
  const api = startExternalApi(pki.server);
  try {
    const c = await connectOrigin({ key: "k", hostname: "localhost", port: api.port }, {
      serverName: "localhost",
      caPem: await Deno.readTextFile(pki.caFile),
    });
    c.close();
  } finally {
    api.close();
    await Deno.remove(dir, { recursive: true });
  }
});
