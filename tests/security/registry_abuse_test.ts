/**
 * What one proxy certificate can write to the registry of a real control node: tight field
 * bounds, addresses as IPs or host names, no control characters, a per-identity quota of
 * instances and a catalog byte budget, each refused with a clear error code (regression: 1,600
 * registrations of ~22 KB each were all accepted and grew the catalog past what proxies read).
 */
import { assert, assertEquals } from "../assert.ts";
import { startControl } from "../proxy_process/helpers.ts";
import { meshClient, sharedSeed } from "../tls_fixture.ts";
import {
  MAX_CATALOG_INSTANCE_BYTES,
  MAX_INSTANCES_PER_PROXY_IDENTITY,
} from "../../control/registry/mod.ts";
import {
  MAX_INSTANCE_LABEL_CHARS,
  MAX_INSTANCE_LABELS,
  MAX_INSTANCE_META_ENTRIES,
  MAX_INSTANCE_META_KEY_CHARS,
  MAX_INSTANCE_META_VALUE_CHARS,
} from "../../config/mod.ts";

/** PUTs one registration; returns status and error code. */
async function _put(
  client: Deno.HttpClient,
  url: string,
  service: string,
  id: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; code: string | undefined; text: string }> {
  const r = await fetch(`${url}/v1/services/${service}/instances/${id}`, {
    method: "PUT",
    client,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  let code: string | undefined;
  try {
    code = JSON.parse(text).error?.code;
  } catch {
    // Not JSON.
  }
  return { status: r.status, code, text };
}

/** Runs `fn` over `0..n-1` with at most `width` at a time. */
async function _pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await fn(next++);
  }));
}

const _big = (i: number) => ({
  address: "10.0.0.1",
  port: 8080,
  tags: Array.from(
    { length: MAX_INSTANCE_LABELS },
    (_, j) => `t${j}`.padEnd(MAX_INSTANCE_LABEL_CHARS, "x"),
  ),
  capabilities: Array.from(
    { length: MAX_INSTANCE_LABELS },
    (_, j) => `c${j}`.padEnd(MAX_INSTANCE_LABEL_CHARS, "x"),
  ),
  meta: Object.fromEntries(
    Array.from({ length: MAX_INSTANCE_META_ENTRIES }, (_, j) => [
      `k${j}-${i}`.padEnd(MAX_INSTANCE_META_KEY_CHARS, "x"),
      "v".repeat(MAX_INSTANCE_META_VALUE_CHARS),
    ]),
  ),
});

Deno.test("a proxy certificate cannot register oversized, unprintable or too many instances", async () => {
  const dir = await Deno.makeTempDir({ prefix: "skein-registry-abuse-" });
  const cp = await startControl(dir);
  const seed = await sharedSeed();
  const web = await meshClient("web");
  const proxy = Deno.createHttpClient({
    caCerts: [seed.certPem],
    cert: web.certPem,
    key: web.keyPem,
  });
  const admin = Deno.createHttpClient({ caCerts: [seed.certPem] });
  const asAdmin = { authorization: `Bearer ${cp.token}` };
  try {
    const ok = await _put(proxy, cp.url, "web", "ok-1", { address: "10.0.0.1", port: 80 });
    assertEquals(ok.status, 201, ok.text);

    // Field bounds and strings.
    const bad: [string, Record<string, unknown>][] = [
      ["too many tags", {
        tags: Array.from({ length: MAX_INSTANCE_LABELS + 1 }, (_, i) => `t${i}`),
      }],
      ["a long tag", { tags: ["x".repeat(MAX_INSTANCE_LABEL_CHARS + 1)] }],
      ["too many capabilities", {
        capabilities: Array.from({ length: MAX_INSTANCE_LABELS + 1 }, (_, i) => `c${i}`),
      }],
      ["too many meta entries", {
        meta: Object.fromEntries(
          Array.from({ length: MAX_INSTANCE_META_ENTRIES + 1 }, (_, i) => [`k${i}`, "v"]),
        ),
      }],
      ["a long meta value", { meta: { k: "v".repeat(MAX_INSTANCE_META_VALUE_CHARS + 1) } }],
      ["an escape in the address", { address: "\u001b[31mred" }],
      ["a space in the address", { address: "10.0.0.1 evil" }],
      ["a URL as the address", { address: "http://10.0.0.1/" }],
      ["CR LF in the version", { version: "v1\r\nx" }],
      ["NUL in a tag", { tags: ["a\u0000b"] }],
      ["an escape in a meta value", { meta: { k: "\u001b]0;title\u0007" } }],
      ["a bidi override in the zone", { zone: "eu\u202e" }],
      ["DEL in the node", { node: "n\u007f" }],
    ];
    for (const [what, fields] of bad) {
      const r = await _put(proxy, cp.url, "web", "bad-1", {
        address: "10.0.0.1",
        port: 80,
        ...fields,
      });
      assertEquals(r.status, 400, `${what}: ${r.text}`);
    }
    // Resources and revocation reasons are registry strings too (an operator token cannot
    // smuggle escapes into what `skein ctl` prints either).
    const res = await fetch(`${cp.url}/v1/resources`, {
      method: "PUT",
      client: admin,
      headers: { ...asAdmin, "content-type": "application/json" },
      body: JSON.stringify({
        kind: "Route",
        service: "web",
        rules: [{ match: { headers: { "x-canary": "\u001b[2J" } }, backends: [{ version: "v1" }] }],
      }),
    });
    assertEquals(res.status, 400, await res.text());
    const rev = await fetch(`${cp.url}/v1/ca/revoke`, {
      method: "POST",
      client: admin,
      headers: { ...asAdmin, "content-type": "application/json" },
      body: JSON.stringify({ service: "mallory", reason: "gone\r\nforged: line" }),
    });
    assertEquals(rev.status, 400, await rev.text());

    // Host names and IPv6 literals stay valid addresses.
    for (const address of ["web-1.internal.example", "::1", "fd00::12"]) {
      const r = await _put(proxy, cp.url, "web", "ok-2", { address, port: 80 });
      assert(r.status === 200 || r.status === 201, `${address}: ${r.text}`);
    }

    // The per-identity quota: the proxy certificate fills its service up to the quota.
    await _pool(MAX_INSTANCES_PER_PROXY_IDENTITY - 2, 8, async (i) => {
      const r = await _put(proxy, cp.url, "web", `q-${i}`, { address: "10.0.0.1", port: 80 });
      assertEquals(r.status, 201, r.text);
    });
    const over = await _put(proxy, cp.url, "web", "q-over", { address: "10.0.0.1", port: 80 });
    assertEquals([over.status, over.code], [409, "quota_exceeded"], over.text);
    // Updating an instance it already has is still allowed, and an operator may go further.
    const again = await _put(proxy, cp.url, "web", "q-0", { address: "10.0.0.2", port: 80 });
    assertEquals(again.status, 200, again.text);
    const op = await _put(
      admin,
      cp.url,
      "web",
      "q-over",
      { address: "10.0.0.1", port: 80 },
      asAdmin,
    );
    assertEquals(op.status, 201, op.text);

    // The catalog budget, as operators fill it with the largest instances allowed.
    let refused: { status: number; code: string | undefined; text: string } | null = null;
    const most = Math.ceil(MAX_CATALOG_INSTANCE_BYTES / 7000) + 50;
    await _pool(most, 8, async (i) => {
      if (refused) return;
      const r = await _put(admin, cp.url, "bulk", `b-${i}`, _big(i), asAdmin);
      if (r.status === 201) return;
      refused ??= r;
    });
    assert(refused !== null, "the catalog budget never refused a write");
    const first = refused as { status: number; code: string | undefined; text: string };
    assertEquals([first.status, first.code], [413, "catalog_budget"], first.text);
    // Still serving reads, and the catalog stays under what proxies read.
    const cat = await fetch(`${cp.url}/v1/catalog`, { client: admin, headers: asAdmin });
    const text = await cat.text();
    assertEquals(cat.status, 200);
    assert(text.length < 16 * 1024 * 1024, `catalog of ${text.length} bytes`);
    // A deregistration makes room again.
    const del = await fetch(`${cp.url}/v1/services/bulk/instances/b-0`, {
      method: "DELETE",
      client: admin,
      headers: asAdmin,
    });
    await del.body?.cancel();
    assertEquals(del.status, 200);
    const small = await _put(proxy, cp.url, "web", "q-0", { address: "10.0.0.3", port: 80 });
    assertEquals(small.status, 200, small.text);
  } finally {
    proxy.close();
    admin.close();
    await cp.child.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
