/**
 * Setup for the `--mtls` mode of `bench/mesh_bench.ts`: an openssl PKI for the HAProxy pair
 * (EC P-256 CA, a server and a client leaf) and a one-node `skein control` that issues join
 * tokens, so the two `skein proxy` processes enrol and speak mTLS to each other.
 * @module
 */

import { sharedSeed, testFetch } from "../../tests/tls_fixture.ts";
import { V8_FLAGS_ARG } from "../../cmd/v8_flags.ts";

const SKEIN = new URL("../../cmd/skein.ts", import.meta.url).pathname;

/** Leaf lifetime; the bench only needs minutes, a day leaves room for clock skew. */
const LEAF_DAYS = 1;
/** How long to wait for the control node to accept its bootstrap token. */
const CONTROL_READY_TRIES = 400;
const POLL_MS = 50;

/** Paths of the PEM files for the HAProxy pair. */
export interface HaproxyPki {
  /** The CA certificate both sides trust. */
  ca: string;
  /** Server certificate + key in one file (HAProxy's `crt` format), for the inbound bind. */
  server: string;
  /** Client certificate + key in one file, for the outbound `server` line. */
  client: string;
}

async function openssl(args: string[]): Promise<void> {
  const r = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(r.stderr)}`);
  }
}

/** Writes an EC P-256 CA and two leaves (both usable for server and client auth) to `dir`. */
export async function makeHaproxyPki(dir: string): Promise<HaproxyPki> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.pem`,
    "-days",
    String(LEAF_DAYS),
    "-subj",
    "/CN=bench-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const ext = `${dir}/leaf.ext`;
  await Deno.writeTextFile(
    ext,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth,clientAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "",
    ].join("\n"),
  );
  for (const name of ["server", "client"]) {
    await openssl([
      "req",
      ...ec,
      "-keyout",
      `${dir}/${name}.key`,
      "-out",
      `${dir}/${name}.csr`,
      "-subj",
      `/CN=bench-${name}`,
    ]);
    await openssl([
      "x509",
      "-req",
      "-in",
      `${dir}/${name}.csr`,
      "-CA",
      `${dir}/ca.pem`,
      "-CAkey",
      `${dir}/ca.key`,
      "-CAcreateserial",
      "-days",
      String(LEAF_DAYS),
      "-extfile",
      ext,
      "-out",
      `${dir}/${name}.crt`,
    ]);
    await Deno.writeTextFile(
      `${dir}/${name}.pem`,
      (await Deno.readTextFile(`${dir}/${name}.crt`)) +
        (await Deno.readTextFile(`${dir}/${name}.key`)),
    );
  }
  return { ca: `${dir}/ca.pem`, server: `${dir}/server.pem`, client: `${dir}/client.pem` };
}

/** HAProxy config lines for one hop; `tls` adds mutual TLS on the side named by `side`. */
export function haproxyConfig(
  bind: number,
  to: number,
  tls?: { pki: HaproxyPki; side: "inbound" | "outbound" },
): string {
  const verify = tls ? ` ca-file ${tls.pki.ca} verify required` : "";
  const bindTls = tls?.side === "inbound" ? ` ssl crt ${tls.pki.server}${verify}` : "";
  const serverTls = tls?.side === "outbound" ? ` ssl crt ${tls.pki.client}${verify}` : "";
  return [
    "global",
    "  maxconn 4000",
    // TLS 1.3 must be allowed on both sides (HAProxy 2.6 already allows it; stated for the record).
    "  ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3",
    "  ssl-default-server-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3",
    "defaults",
    "  mode http",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    "  option http-keep-alive",
    "frontend fe",
    `  bind 127.0.0.1:${bind}${bindTls}`,
    "  default_backend be",
    "backend be",
    `  server s1 127.0.0.1:${to}${serverTls}`,
    "",
  ].join("\n");
}

/** A running control node the proxies enrol with. */
export interface BenchControl {
  url: string;
  /** Bootstrap admin token. */
  token: string;
  /** The CA seed certificate (PEM file) the control API's certificate chains to. */
  caFile: string;
  /** Process id of the control node (for memory figures). */
  pid: number;
}

/** `deno run` arguments for the skein CLI. */
export function skeinArgs(args: string[]): string[] {
  // The V8 flags skein ships with, so the benchmark measures it as it runs in production.
  return ["run", "-A", "--unstable-net", "--quiet", V8_FLAGS_ARG, SKEIN, ...args];
}

/**
 * Spawns a one-node control plane on `apiPort` and waits until it accepts its bootstrap
 * token (which it registers through Raft once it is leader).
 */
export async function startBenchControl(
  dir: string,
  apiPort: number,
  spawn: (cmd: string, args: string[]) => Deno.ChildProcess,
): Promise<BenchControl> {
  const cfg = `${dir}/control.yaml`;
  const tokenFile = `${dir}/control.token`;
  // The same seed the join-token CLI helper trusts; the control API speaks HTTPS with it.
  const seed = await sharedSeed();
  await Deno.writeTextFile(
    cfg,
    JSON.stringify({
      node: "cp-1",
      data_dir: `${dir}/cp-1-data`,
      api: `127.0.0.1:${apiPort}`,
      raft: "127.0.0.1:0",
      bootstrap_token_file: tokenFile,
      tls: { ca_cert_file: seed.certFile, ca_key_file: seed.keyFile },
    }),
  );
  const child = spawn(
    Deno.execPath(),
    skeinArgs(["control", "--config", cfg, "--log-level", "error"]),
  );
  const url = `https://127.0.0.1:${apiPort}`;
  for (let i = 0; i < CONTROL_READY_TRIES; i++) {
    try {
      const token = (await Deno.readTextFile(tokenFile)).trim();
      const r = await testFetch(`${url}/v1/operator-tokens`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await r.body?.cancel();
      if (r.status === 200) return { url, token, caFile: seed.certFile, pid: child.pid };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error("skein control did not become ready");
}

/**
 * True if a plaintext HTTP request to `port` gets an HTTP response: an mTLS inbound must
 * answer false, which is how the bench proves the hop it measures is encrypted.
 */
export async function answersPlaintext(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
    await r.body?.cancel();
    return true;
  } catch {
    return false;
  }
}
