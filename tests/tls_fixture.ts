/**
 * One mesh CA seed per test process and an HTTPS client that trusts it, so process tests can
 * start control clusters (which speak HTTPS and mTLS) and call their API like an operator would.
 */
import { type CaState, createCa, issueCertificate, writeSeedCa } from "../control/ca/mod.ts";
import { mtlsConnect, splitPemCerts, type TlsMaterial } from "../common/tls/mod.ts";

/** Trust domain of the shared seed. */
export const TEST_TRUST_DOMAIN = "skein.local";

/** Where the shared seed lives. */
export interface SeedFiles {
  /** Directory holding both files. */
  dir: string;
  /** The root certificate (what proxies and clients trust). */
  certFile: string;
  /** The root key (control nodes only). */
  keyFile: string;
  /** The root certificate, PEM. */
  certPem: string;
  /** The CA itself, to issue test clients' certificates. */
  state: CaState;
}

let _seed: Promise<SeedFiles> | null = null;
const _extraRoots = new Set<string>();
let _client: Deno.HttpClient | null = null;

/**
 * The CA seed shared by every cluster this test process starts (created on first use). Its
 * directory holds a CA key, so it is removed when the test process ends.
 */
export function sharedSeed(): Promise<SeedFiles> {
  _seed ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "skein-seed-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // Already gone.
      }
    });
    // Dated a few days back, so tests can issue certificates that have already expired.
    const state = await createCa({
      trustDomain: TEST_TRUST_DOMAIN,
      now: Date.now() - 3 * 86_400_000,
    });
    const { certFile, keyFile } = await writeSeedCa(dir, state);
    return { dir, certFile, keyFile, certPem: await Deno.readTextFile(certFile), state };
  })();
  return _seed;
}

/** Also trusts `pems` from now on (a CA rotation moved the control nodes to a new root). */
export function trustRoots(pems: readonly string[]): void {
  let changed = false;
  for (const p of pems.flatMap((x) => splitPemCerts(x))) {
    if (!_extraRoots.has(p)) {
      _extraRoots.add(p);
      changed = true;
    }
  }
  if (changed) {
    _client?.close();
    _client = null;
  }
}

/** An HTTPS client trusting the shared seed (and any roots added with {@linkcode trustRoots}). */
export async function testHttpClient(): Promise<Deno.HttpClient> {
  if (_client) return _client;
  const seed = await sharedSeed();
  _client = Deno.createHttpClient({ caCerts: [seed.certPem, ..._extraRoots] });
  return _client;
}

/** `fetch` that trusts the shared seed; plain `fetch` for http:// URLs. */
export async function testFetch(
  input: string | URL | Request,
  init?: RequestInit,
): Promise<Response> {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (!url.startsWith("https:")) return await fetch(input, init);
  return await fetch(input, { ...init, client: await testHttpClient() });
}

/** A mesh certificate for `service` from the shared seed, as a test client presents it. */
export async function meshClient(
  service: string,
  opts: { now?: number; ttlMs?: number } = {},
): Promise<TlsMaterial> {
  const seed = await sharedSeed();
  const c = await issueCertificate(seed.state, {
    identity: { kind: "service", service },
    now: opts.now ?? Date.now(),
    ttlMs: opts.ttlMs,
  });
  return { certPem: c.certPem, keyPem: c.keyPem, caPem: c.caPem };
}

/**
 * Sends one HTTP/1.1 request over mutual TLS to a proxy's inbound as the mesh service `as`,
 * checking that the server is a mesh proxy, and reads the answer until the server closes.
 */
export async function meshRequest(
  addr: string,
  path = "/",
  opts: { as?: string; host?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: Map<string, string> }> {
  const m = await meshClient(opts.as ?? "test-client");
  const i = addr.lastIndexOf(":");
  const socket = await mtlsConnect({
    host: addr.slice(0, i),
    port: Number(addr.slice(i + 1)),
    cert: m.certPem,
    key: m.keyPem,
    ca: m.caPem,
    expectSpiffe: (id) => id.kind === "service",
  });
  const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const chunks: Uint8Array[] = [];
  const done = new Promise<void>((resolve, reject) => {
    socket.on("data", (c: Uint8Array) => chunks.push(c));
    socket.on("end", () => resolve());
    socket.on("close", () => resolve());
    socket.on("error", reject);
  });
  socket.write(
    `GET ${path} HTTP/1.1\r\nhost: ${opts.host ?? "mesh"}\r\n${extra}connection: close\r\n\r\n`,
  );
  await done;
  socket.destroy();
  const text = new TextDecoder().decode(
    chunks.reduce((a, b) => {
      const out = new Uint8Array(a.length + b.length);
      out.set(a);
      out.set(b, a.length);
      return out;
    }, new Uint8Array()),
  );
  const sep = text.indexOf("\r\n\r\n");
  const head = text.slice(0, sep).split("\r\n");
  const status = Number(head[0]?.split(" ")[1] ?? 0);
  const headers = new Map<string, string>();
  for (const l of head.slice(1)) {
    const c = l.indexOf(":");
    headers.set(l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim());
  }
  let body = text.slice(sep + 4);
  if (headers.get("transfer-encoding") === "chunked") {
    let out = "";
    let rest = body;
    while (true) {
      const nl = rest.indexOf("\r\n");
      const n = parseInt(rest.slice(0, nl), 16);
      if (!n) break;
      out += rest.slice(nl + 2, nl + 2 + n);
      rest = rest.slice(nl + 2 + n + 2);
    }
    body = out;
  }
  return { status, body, headers };
}
