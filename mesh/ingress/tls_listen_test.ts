import { assert, assertEquals } from "../../tests/assert.ts";
import tls from "node:tls";
import { nullLogger } from "../../common/log.ts";
import { TlsConn } from "../forward/mod.ts";
import { AddressCap } from "./address_cap.ts";
import { IngressCertStore } from "./cert_store.ts";
import { IngressTlsConn } from "./tls_conn.ts";
import { listenIngressTls } from "./tls_listen.ts";

/** A self-signed leaf for `localhost` written to a temp dir. */
async function _leafFiles(dir: string): Promise<{ cert_file: string; key_file: string }> {
  const cert_file = `${dir}/leaf.crt`, key_file = `${dir}/leaf.key`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key_file,
      "-out",
      cert_file,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  return { cert_file, key_file };
}

Deno.test("listenIngressTls hands clients over on the native handle, and they are served", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-ingress-tls-" });
  const store = await IngressCertStore.open([await _leafFiles(dir)], nullLogger, 0);
  const listener = await listenIngressTls({
    hostname: "127.0.0.1",
    port: 0,
    store,
    cap: new AddressCap(4),
    logger: nullLogger,
  });
  const client = tls.connect({
    host: "127.0.0.1",
    port: listener.addr.port,
    servername: "localhost",
    rejectUnauthorized: false,
  });
  client.on("error", () => {});
  try {
    const conn = await listener.accept();
    // The socket API stays as the fallback; this Deno has the handle, so it must be used.
    assert(conn instanceof IngressTlsConn, "a client's connection is an IngressTlsConn");
    assert(!(conn instanceof TlsConn));
    client.write("ping");
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    assertEquals(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "ping");
    const got = Promise.withResolvers<string>();
    client.once("data", (c: Uint8Array) => got.resolve(new TextDecoder().decode(c)));
    assert((conn as IngressTlsConn).tryWrite(new TextEncoder().encode("pong")));
    assertEquals(await got.promise, "pong");
    conn.close();
  } finally {
    client.destroy();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
