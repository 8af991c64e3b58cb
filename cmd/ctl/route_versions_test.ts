import assert from "node:assert/strict";
import { createApi } from "../../control/api/mod.ts";
import { FakeBackend } from "../../tests/control/fake_backend.ts";
import { runCtl } from "../ctl.ts";
import { declaredVersions } from "./route_versions.ts";

/** `skein ctl` against an API over a fake backend where `ledger` runs versions v1 and v2. */
async function withLedger(
  fn: (
    ctl: (...a: string[]) => Promise<{ code: number; err: string }>,
    backend: FakeBackend,
  ) => Promise<void>,
) {
  const backend = new FakeBackend();
  for (const [id, version] of [["l1", "v1"], ["l2", "v2"]]) {
    backend.applyDirect({
      type: "register_instance",
      instance: {
        id: id!,
        service: "ledger",
        node: "vm-1",
        address: "10.0.0.1",
        port: 80,
        zone: "",
        version: version!,
        weight: 1,
        tags: [],
        capabilities: [],
        meta: {},
        health: "passing",
      },
    });
  }
  const app = createApi(backend);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (r) => app.fetch(r));
  const ctl = async (...args: string[]) => {
    let err = "";
    const code = await runCtl(args, {
      stdout: () => {},
      stderr: (t) => (err += t),
      env: { SKEIN_CONTROL: `http://127.0.0.1:${server.addr.port}`, SKEIN_TOKEN: "skn_x" },
    });
    return { code, err };
  };
  try {
    await fn(ctl, backend);
  } finally {
    await server.shutdown();
  }
}

Deno.test("ctl apply refuses a Route naming a version no instance declares, with its line", async () => {
  await withLedger(async (ctl, backend) => {
    const file = await Deno.makeTempFile({ suffix: ".yaml" });
    try {
      await Deno.writeTextFile(
        file,
        "kind: Route\nservice: ledger\nrules:\n  - backends:\n      - { version: v1, weight: 95 }\n" +
          "      - { version: v9, weight: 5 }\n    mirror: { version: v3, percent: 1 }\n",
      );
      const r = await ctl("apply", "-f", file);
      assert.equal(r.code, 2);
      const lines = r.err.trim().split("\n");
      assert.equal(lines.length, 2, r.err);
      assert.match(
        lines[0]!,
        /:6:\d+: rules\.0\.backends\.1\.version: no instance of ledger declares version "v9"/,
      );
      assert.match(lines[1]!, /:7:\d+: rules\.0\.mirror\.version: .*"v3"/);
      assert.equal(backend.proposed.length, 0, "nothing was written");
      // Declared versions pass, and a service with no instance yet may get its Route first.
      await Deno.writeTextFile(
        file,
        "kind: Route\nservice: ledger\nrules:\n  - backends: [{ version: v1 }, { version: v2 }]\n" +
          "---\nkind: Route\nservice: billing\nrules:\n  - backends: [{ version: v7 }]\n",
      );
      const ok = await ctl("apply", "-f", file);
      assert.equal(ok.code, 0, ok.err);
    } finally {
      await Deno.remove(file);
    }
  });
});

Deno.test("a Route refused because instances declare no version says so in words, with the fix", () => {
  assert.equal(
    declaredVersions(new Set([""])),
    "its instances declare no version; set `version:` on the service in the proxy's proxy.yaml",
  );
  assert.equal(declaredVersions(new Set(["v2", "v1"])), '"v1", "v2" do');
  assert.equal(
    declaredVersions(new Set(["v1", ""])),
    '"v1" declared, other instances declare none',
  );
});
