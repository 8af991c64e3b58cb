/** `skein proxy --check` on a gateway: its ingress ports and certificate files are checked. */
import { assert, assertEquals } from "../assert.ts";
import { runSkein } from "../skein_cli.ts";
import { sharedSeed } from "../tls_fixture.ts";
import { startControl } from "./helpers.ts";
import { makeCert } from "./ingress_pki.ts";

Deno.test("proxy --check names an ingress port in use and a certificate whose key is another's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-ingress-check-" });
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const cp = await startControl(dir);
  try {
    const seed = await sharedSeed();
    const shop = await makeCert(dir, "shop", ["shop.example.com"]);
    const other = await makeCert(dir, "other", ["other.example.com"]);
    await Deno.writeTextFile(`${dir}/gw.token`, "skn_join_x\n", { mode: 0o600 });
    const cfg = (listen: string, key: string) =>
      JSON.stringify({
        node: "gw",
        control: [cp.url],
        ca_file: seed.certFile,
        token_file: `${dir}/gw.token`,
        data_dir: `${dir}/gw`,
        admin: "127.0.0.1:0",
        inbound: "127.0.0.1:0",
        gateway: "edge",
        ingress: [{
          listen,
          tls: { cert_file: shop.cert, key_file: key },
          routes: [{ service: "web" }],
        }],
      });
    const port = (busy.addr as Deno.NetAddr).port;
    await Deno.writeTextFile(`${dir}/gw.yaml`, cfg(`127.0.0.1:${port}`, other.key));
    const bad = await runSkein(["proxy", "--check", "--config", `${dir}/gw.yaml`]);
    assertEquals(bad.code, 1, bad.stdout + bad.stderr);
    const problems = bad.stdout.split("\n").filter((l) => l.startsWith("problem:"));
    assertEquals(problems.length, 2, bad.stdout);
    assert(problems[0]!.includes(`ingress[0] 127.0.0.1:${port} cannot be bound`), bad.stdout);
    assert(problems[1]!.includes("is not the key of the certificate"), bad.stdout);

    await Deno.writeTextFile(`${dir}/gw.yaml`, cfg("127.0.0.1:0", shop.key));
    const good = await runSkein(["proxy", "--check", "--config", `${dir}/gw.yaml`]);
    assertEquals(good.code, 0, good.stdout + good.stderr);
    assert(good.stdout.includes("ingress[0] certificate"), good.stdout);
  } finally {
    busy.close();
    await cp.child.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
