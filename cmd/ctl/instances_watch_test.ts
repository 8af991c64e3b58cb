/** `skein ctl instances register|deregister|drain` and `skein ctl watch` against a real API. */
import { assert, assertEquals } from "../../tests/assert.ts";
import { createApi } from "../../control/api/mod.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { runCtl } from "../ctl.ts";
import { catalogChanges } from "./watch.ts";

type Ctl = (...args: string[]) => Promise<{ code: number; out: string; err: string }>;

async function withControl(fn: (ctl: Ctl, url: string) => Promise<void>): Promise<void> {
  const app = createApi(new FakeBackend(), {});
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  try {
    await fn(async (...args: string[]) => {
      let out = "";
      let err = "";
      const code = await runCtl(args, {
        stdout: (t) => (out += t),
        stderr: (t) => (err += t),
        env: { SKEIN_CONTROL: url },
      });
      return { code, out, err };
    }, url);
  } finally {
    await server.shutdown();
  }
}

Deno.test("ctl instances registers, drains (weight 0) and deregisters", async () => {
  await withControl(async (ctl) => {
    const reg = await ctl(
      "instances",
      "register",
      "ledger",
      "l1",
      "--address",
      "127.0.0.1",
      "--port",
      "9001",
      "--version",
      "v1",
    );
    assertEquals(reg.code, 0, reg.err);
    const get = async () =>
      JSON.parse((await ctl("services", "ledger", "-o", "json")).out).instances as {
        id: string;
        weight: number;
        version: string;
      }[];
    assertEquals((await get()).map((i) => [i.id, i.weight, i.version]), [["l1", 1, "v1"]]);
    const drain = await ctl("instances", "drain", "ledger", "l1");
    assertEquals(drain.code, 0, drain.err);
    assertEquals((await get()).map((i) => [i.id, i.weight, i.version]), [["l1", 0, "v1"]]);
    const missing = await ctl("instances", "drain", "ledger", "nope");
    assertEquals(missing.code, 2);
    assert(missing.err.includes("no instance nope of service ledger"), missing.err);
    const dereg = await ctl("instances", "deregister", "ledger", "l1");
    assertEquals(dereg.code, 0, dereg.err);
    assertEquals(await get(), []);
    const bad = await ctl("instances", "register", "ledger", "l2", "--port", "99999");
    assertEquals(bad.code, 2);
    const typo = await ctl("instances", "regster", "ledger", "l2");
    assert(typo.err.includes("did you mean register?"), typo.err);
  });
});

Deno.test("ctl watch prints what exists, then each change as it happens", async () => {
  await withControl(async (ctl, url) => {
    await ctl("instances", "register", "ledger", "l1", "--address", "10.0.0.1", "--port", "1");
    let out = "";
    const listed = Promise.withResolvers<void>();
    const watching = runCtl(["watch", "--count", "2"], {
      stdout: (t) => {
        out += t;
        listed.resolve();
      },
      stderr: (t) => (out += t),
      env: { SKEIN_CONTROL: url },
    });
    // Once l1 is listed the watch waits in a blocking query; this write wakes it.
    await listed.promise;
    await ctl("instances", "register", "ledger", "l2", "--address", "10.0.0.2", "--port", "2");
    assertEquals(await watching, 0, out);
    const lines = out.trim().split("\n");
    assertEquals(lines.length, 2, out);
    assert(lines[0]!.includes("instance ledger/l1 added"), lines[0]);
    assert(lines[1]!.includes("instance ledger/l2 added (10.0.0.2:2 passing weight 1)"), lines[1]);
  });
});

Deno.test("catalogChanges() reports instance and resource changes, filtered by kind", () => {
  const a = {
    index: 1,
    services: { s: [{ id: "a", address: "x", port: 1, health: "passing", weight: 1 }] },
    resources: [{ kind: "Route", service: "s", rules: [] }, { kind: "Policy", service: "s" }],
  };
  const b = {
    index: 2,
    services: { s: [{ id: "a", address: "x", port: 1, health: "critical", weight: 1 }] },
    resources: [{ kind: "Route", service: "s", rules: [{}] }],
  };
  const all = catalogChanges(a, b).map((e) => `${e.what} ${e.name} ${e.change}`);
  assertEquals(all, [
    "instance s/a changed",
    "resource Route/s changed",
    "resource Policy/s removed",
  ]);
  const routes = catalogChanges(a, b, "Route").map((e) => `${e.name} ${e.change}`);
  assertEquals(routes, ["Route/s changed"]);
});
