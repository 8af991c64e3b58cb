import https from "node:https";
import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { leaf, testCa } from "../../tests/security/_pki.ts";
import { trustBundlePem } from "../../control/ca/mod.ts";
import { ControlHttp } from "./control_https.ts";

/** An HTTPS server with `cert` that answers the client certificate's SANs it saw. */
async function server(c: { certPem: string; keyPem: string }, ca: string) {
  const s = https.createServer({
    cert: c.certPem,
    key: c.keyPem,
    ca,
    requestCert: true,
    rejectUnauthorized: false,
  }, (req, res) => {
    const peer = (req.socket as unknown as { getPeerCertificate(): { subjectaltname?: string } })
      .getPeerCertificate();
    let body = "";
    req.on("data", (d) => body += d);
    req.on("end", () => res.end(JSON.stringify({ peer: peer?.subjectaltname ?? null, body })));
  });
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as { port: number }).port;
  return { url: `https://127.0.0.1:${port}`, close: () => new Promise((r) => s.close(r)) };
}

Deno.test("ControlHttp talks only to control identities of the mesh CA, with the proxy's certificate", async () => {
  const ca = await testCa();
  const other = await testCa();
  const bundle = trustBundlePem(ca);
  const control = await leaf(ca, "x", {
    identity: { kind: "control", node: "cp-1" },
    extraSans: { ip: ["127.0.0.1"] },
  });
  const proxyCert = await leaf(ca, "web");
  const good = await server(control, bundle);
  // A valid mesh certificate, but a service's: not a control node.
  const impostor = await server(await leaf(ca, "payments"), bundle);
  // A control id from another CA.
  const foreign = await server(
    await leaf(other, "x", { identity: { kind: "control", node: "cp-1" } }),
    bundle,
  );
  const http = new ControlHttp([bundle], {
    certPem: proxyCert.certPem,
    keyPem: proxyCert.keyPem,
    caPem: bundle,
  });
  try {
    const r = await http.fetch(`${good.url}/v1/x`, { method: "PUT", body: "hello" });
    assertEquals(r.status, 200);
    const j = await r.json();
    assert(String(j.peer).includes("spiffe://skein.local/svc/web"), "the proxy cert was presented");
    assertEquals(j.body, "hello");
    await assertRejects(() => http.fetch(`${impostor.url}/`), Error, "expected a control node");
    await assertRejects(() => http.fetch(`${foreign.url}/`), Error);
    // An aborted call rejects instead of hanging.
    const ac = new AbortController();
    ac.abort();
    await assertRejects(() => http.fetch(`${good.url}/`, { signal: ac.signal }), Error);
  } finally {
    http.close();
    await good.close();
    await impostor.close();
    await foreign.close();
  }
});
