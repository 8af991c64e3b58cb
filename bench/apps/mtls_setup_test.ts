import { assert, assertEquals } from "../../tests/assert.ts";
import { haproxyConfig, makeHaproxyPki } from "./mtls_setup.ts";

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("makeHaproxyPki issues P-256 leaves that chain to its CA and not to another", async () => {
  const a = await Deno.makeTempDir({ prefix: "skein-bench-pki-" });
  const b = await Deno.makeTempDir({ prefix: "skein-bench-pki-" });
  try {
    const pki = await makeHaproxyPki(a);
    const other = await makeHaproxyPki(b);
    for (const leaf of ["server", "client"]) {
      const ok = await run("openssl", [
        "verify",
        "-purpose",
        leaf === "server" ? "sslserver" : "sslclient",
        "-CAfile",
        pki.ca,
        `${a}/${leaf}.crt`,
      ]);
      assert(ok.ok, ok.out);
      const foreign = await run("openssl", ["verify", "-CAfile", other.ca, `${a}/${leaf}.crt`]);
      assert(!foreign.ok, `a leaf must not verify against another CA: ${foreign.out}`);
      const text = await run("openssl", ["x509", "-in", `${a}/${leaf}.crt`, "-noout", "-text"]);
      assert(/prime256v1|P-256/.test(text.out), text.out);
    }
    // HAProxy's crt file carries the certificate and its key.
    const pem = await Deno.readTextFile(pki.server);
    assert(pem.includes("BEGIN CERTIFICATE") && pem.includes("PRIVATE KEY"), pem);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("haproxyConfig puts mutual TLS on the bind of the inbound and the server of the outbound", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-bench-pki-" });
  try {
    const pki = await makeHaproxyPki(dir);
    const inbound = haproxyConfig(1001, 1002, { pki, side: "inbound" });
    const outbound = haproxyConfig(1003, 1001, { pki, side: "outbound" });
    const line = (cfg: string, re: RegExp) => cfg.split("\n").find((l) => re.test(l)) ?? "";
    assertEquals(
      line(inbound, /^\s*bind /).trim(),
      `bind 127.0.0.1:1001 ssl crt ${pki.server} ca-file ${pki.ca} verify required`,
    );
    assertEquals(line(inbound, /^\s*server /).trim(), "server s1 127.0.0.1:1002");
    assertEquals(line(outbound, /^\s*bind /).trim(), "bind 127.0.0.1:1003");
    assertEquals(
      line(outbound, /^\s*server /).trim(),
      `server s1 127.0.0.1:1001 ssl crt ${pki.client} ca-file ${pki.ca} verify required`,
    );
    assert(!haproxyConfig(1, 2).includes(" ssl "), "plaintext config has no ssl");
    // HAProxy itself accepts both files (loads the certificates, binds nothing).
    for (const [name, cfg] of [["in", inbound], ["out", outbound]] as const) {
      await Deno.writeTextFile(`${dir}/${name}.cfg`, cfg);
      const r = await run("haproxy", ["-c", "-f", `${dir}/${name}.cfg`]);
      assert(r.ok, r.out);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
