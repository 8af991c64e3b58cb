/**
 * Test helpers: a CA, leaves written to a temp dir for outside clients (openssl, curl), an HTTP
 * responder on createMtlsServer, a virtual clock, and subprocess runners.
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import {
  type CaState,
  createCa,
  issueCertificate,
  type IssuedCertificate,
  type SignCsrOptions,
  trustBundlePem,
} from "../../control/ca/mod.ts";
import { createMtlsServer, type MtlsServer, type MtlsServerOptions } from "../../common/tls/mod.ts";
import type { RenewerClock } from "../../mesh/identity/mod.ts";

/** A CA for tests. */
export function testCa(trustDomain = "skein.local", now = Date.now()): Promise<CaState> {
  return createCa({ trustDomain, now });
}

/** Issues a service leaf. */
export function leaf(
  ca: CaState,
  service: string,
  opts: Partial<Omit<SignCsrOptions, "csrPem">> = {},
): Promise<IssuedCertificate> {
  return issueCertificate(ca, {
    identity: { kind: "service", service },
    now: Date.now(),
    ...opts,
  });
}

/** Writes `name.pem` / `name.key` into `dir` and returns their paths. */
export async function writePair(
  dir: string,
  name: string,
  c: { certPem: string; keyPem: string },
): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.pem`;
  const key = `${dir}/${name}.key`;
  await Deno.writeTextFile(cert, c.certPem);
  await Deno.writeTextFile(key, c.keyPem, { mode: 0o600 });
  return { cert, key };
}

/**
 * An mTLS server that answers every HTTP/1.1 request with 200 and the caller's SPIFFE id as
 * body (keep-alive), so outside clients can show who they were admitted as.
 */
export async function whoamiServer(
  opts: Omit<MtlsServerOptions, "onConnection">,
): Promise<{ srv: MtlsServer; port: number; seen: string[] }> {
  const seen: string[] = [];
  const srv = createMtlsServer({
    ...opts,
    onConnection(socket, peer) {
      seen.push(peer.spiffeId.uri);
      let buf = "";
      socket.on("data", (d: Uint8Array) => {
        buf += new TextDecoder().decode(d);
        let i: number;
        while ((i = buf.indexOf("\r\n\r\n")) >= 0) {
          const close = /\r\nconnection: *close/i.test(buf.slice(0, i));
          buf = buf.slice(i + 4);
          const body = peer.spiffeId.uri + "\n";
          socket.write(
            `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nx-peer: ${peer.spiffeId.uri}\r\n\r\n${body}`,
          );
          if (close) socket.end();
        }
      });
      socket.on("error", () => {});
    },
  });
  const { port } = await srv.listen(0, "127.0.0.1");
  return { srv, port, seen };
}

/** Runs a command, returns exit code and output; stdin is closed (or fed `input`). */
export async function run(
  cmd: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  if (input !== undefined) await w.write(new TextEncoder().encode(input));
  await w.close();
  const out = await p.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Sends `data` over plain TCP and collects whatever comes back until the peer closes. */
export function plaintextExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    const s = net.connect(port, "127.0.0.1", () => s.write(data));
    s.on("data", (d: Uint8Array) => chunks.push(d));
    s.on("error", () => {});
    s.on("close", () => resolve(new TextDecoder("latin1").decode(_concat(chunks))));
    // Bound the wait: the server must close, but a hung test should still finish.
    setTimeout(() => s.destroy(), 10_000).unref?.();
  });
}

function _concat(chunks: Uint8Array[]): Uint8Array {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Virtual time for CertRenewer: timers fire only when the test advances the clock. */
export class FakeClock implements RenewerClock {
  t: number;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  /** Starts at `t`. */
  constructor(t: number) {
    this.t = t;
  }
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(h: unknown): void {
    this.#timers.delete(h as number);
  }
  /** Pending timers' due times, sorted. */
  get pending(): number[] {
    return [...this.#timers.values()].map((x) => x.at).sort((a, b) => a - b);
  }
  /** Moves time to `t`, firing due timers in order. */
  advanceTo(t: number): void {
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) {
        if (e[1].at <= t && (!first || e[1].at < first[1].at)) first = e;
      }
      if (!first) break;
      this.#timers.delete(first[0]);
      this.t = first[1].at;
      first[1].fn();
    }
    this.t = t;
  }
}

/** Issues a control-node leaf (`spiffe://<td>/control/<node>`). */
export function controlLeaf(
  ca: CaState,
  node: string,
  opts: Partial<Omit<SignCsrOptions, "csrPem">> = {},
): Promise<IssuedCertificate> {
  return leaf(ca, node, { identity: { kind: "control", node }, ...opts });
}

/** A fixed certificate and bundle in the shape the Raft transport reads per connection. */
export function staticTlsSource(
  ca: CaState,
  c: { certPem: string; keyPem: string },
  revoked: readonly string[] = [],
): {
  trustDomain: string;
  material(): { certPem: string; keyPem: string; caPem: string };
  isRevoked(id: string): boolean;
} {
  const m = { certPem: c.certPem, keyPem: c.keyPem, caPem: trustBundlePem(ca) };
  const set = new Set(revoked);
  return { trustDomain: ca.trustDomain, material: () => m, isRevoked: (id) => set.has(id) };
}

/** One HTTP GET over `openssl s_client` (TLS 1.3) with the given certificate flags; its stdout. */
export async function sClientGet(addr: string, certArgs: string[], path = "/"): Promise<string> {
  const req = `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`;
  const r = await run("openssl", [
    "s_client",
    "-connect",
    addr,
    "-tls1_3",
    "-quiet",
    "-ign_eof",
    ...certArgs,
  ], req);
  return r.stdout;
}

/**
 * A `node:tls` server requiring client certificates and one connected client (both of one test
 * CA); `server` is the accepted socket.
 */
export async function tlsPair(): Promise<
  { srv: tls.Server; client: tls.TLSSocket; server: tls.TLSSocket }
> {
  const ca = await testCa();
  const s = await leaf(ca, "ledger");
  const c = await leaf(ca, "billing");
  const caPem = trustBundlePem(ca);
  const accepted = Promise.withResolvers<tls.TLSSocket>();
  const srv = tls.createServer(
    { key: s.keyPem, cert: s.certPem, ca: caPem, requestCert: true, rejectUnauthorized: true },
    (sock) => accepted.resolve(sock),
  );
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  const client = tls.connect({
    host: "127.0.0.1",
    port,
    key: c.keyPem,
    cert: c.certPem,
    ca: caPem,
    checkServerIdentity: () => undefined,
  });
  client.on("error", () => {});
  await new Promise((r) => client.once("secureConnect", r));
  const server = await accepted.promise;
  server.on("error", () => {});
  return { srv, client, server };
}
