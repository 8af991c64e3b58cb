/**
 * A stand-in for an API outside the mesh, for egress tests: its own CA (made with `openssl`),
 * server certificates for chosen names, and a small HTTPS/1.1 server that counts the TLS
 * connections it accepts and records each request's target and `Host`.
 * @module
 */

/** A CA and server certificates written to a directory. */
export interface TestPki {
  /** The CA certificate (what an ExternalService's `tls.ca_file` names). */
  caFile: string;
  /** Certificate and key PEM for a server name. */
  server(name: string): { cert: string; key: string };
}

async function _openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Makes a CA in `dir` and a server certificate (DNS SAN) for each of `names`. */
export async function makePki(dir: string, names: readonly string[]): Promise<TestPki> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await _openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=ext CA",
    ],
    dir,
  );
  const files = new Map<string, { cert: string; key: string }>();
  for (const n of names) {
    await _openssl(
      ["req", ...ec, "-keyout", `${n}.key`, "-out", `${n}.csr`, "-subj", `/CN=${n}`],
      dir,
    );
    await Deno.writeTextFile(
      `${dir}/${n}.ext`,
      `subjectAltName=DNS:${n}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
    );
    await _openssl([
      "x509",
      "-req",
      "-in",
      `${n}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${n}.pem`,
      "-days",
      "2",
      "-extfile",
      `${n}.ext`,
    ], dir);
    files.set(n, {
      cert: await Deno.readTextFile(`${dir}/${n}.pem`),
      key: await Deno.readTextFile(`${dir}/${n}.key`),
    });
  }
  return {
    caFile: `${dir}/ca.pem`,
    server: (name) => {
      const f = files.get(name);
      if (f === undefined) throw new Error(`no certificate for ${name}`);
      return f;
    },
  };
}

/**
 * Makes in `dir` a root CA, an intermediate it signs and a certificate for `name` the
 * intermediate signs; the server's `cert` is the leaf followed by the intermediate, as public
 * servers send it, and `caFile` holds the root only.
 */
export async function makeChainedPki(
  dir: string,
  name: string,
): Promise<{ caFile: string; server: { cert: string; key: string } }> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await _openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "root.key",
      "-out",
      "root.pem",
      "-days",
      "2",
      "-subj",
      "/CN=root",
    ],
    dir,
  );
  await _openssl(["req", ...ec, "-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=int"], dir);
  await Deno.writeTextFile(
    `${dir}/int.ext`,
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
  );
  await _openssl([
    "x509",
    "-req",
    "-in",
    "int.csr",
    "-CA",
    "root.pem",
    "-CAkey",
    "root.key",
    "-CAcreateserial",
    "-out",
    "int.pem",
    "-days",
    "2",
    "-extfile",
    "int.ext",
  ], dir);
  await _openssl(
    ["req", ...ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", `/CN=${name}`],
    dir,
  );
  await Deno.writeTextFile(
    `${dir}/leaf.ext`,
    `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  await _openssl([
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "int.pem",
    "-CAkey",
    "int.key",
    "-CAcreateserial",
    "-out",
    "leaf.pem",
    "-days",
    "2",
    "-extfile",
    "leaf.ext",
  ], dir);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    caFile: `${dir}/root.pem`,
    server: {
      cert: (await read("leaf.pem")) + (await read("int.pem")),
      key: await read("leaf.key"),
    },
  };
}

/** One request the stand-in received. */
export interface SeenRequest {
  /** The request line's target. */
  target: string;
  /** The `Host` value. */
  host: string | null;
  /** Header names received, lower-cased. */
  names: string[];
}

/** A running stand-in API. */
export interface ExternalApi {
  /** Its port on 127.0.0.1. */
  port: number;
  /** TLS connections whose handshake completed. */
  accepted: number;
  /** Requests answered, in order. */
  requests: SeenRequest[];
  /** Stops it and closes its connections. */
  close(): void;
}

const _dec = new TextDecoder();
const _enc = new TextEncoder();
/** Largest request head the stand-in reads. */
const MAX_HEAD_BYTES = 64 * 1024;

/**
 * Starts an HTTPS/1.1 keep-alive server on 127.0.0.1 with `cert`; it answers every (bodiless)
 * request 200 with a JSON body naming the target and Host it got.
 */
export function startExternalApi(tls: { cert: string; key: string }): ExternalApi {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...tls });
  const conns = new Set<Deno.Conn>();
  const api: ExternalApi = {
    port: listener.addr.port,
    accepted: 0,
    requests: [],
    close: () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Closed already.
        }
      }
    },
  };
  const serve = async (c: Deno.TlsConn) => {
    conns.add(c);
    try {
      await c.handshake();
      api.accepted++;
      let buf = "";
      const chunk = new Uint8Array(16 * 1024);
      while (true) {
        let end: number;
        while ((end = buf.indexOf("\r\n\r\n")) < 0) {
          const n = await c.read(chunk);
          if (n === null || buf.length > MAX_HEAD_BYTES) return;
          buf += _dec.decode(chunk.subarray(0, n));
        }
        const lines = buf.slice(0, end).split("\r\n");
        buf = buf.slice(end + 4);
        const fields = lines.slice(1).map((l) => [
          l.slice(0, l.indexOf(":")).trim().toLowerCase(),
          l.slice(l.indexOf(":") + 1).trim(),
        ]);
        const seen: SeenRequest = {
          target: lines[0]!.split(" ")[1] ?? "",
          host: fields.find(([k]) => k === "host")?.[1] ?? null,
          names: fields.map(([k]) => k!),
        };
        api.requests.push(seen);
        const body = JSON.stringify(seen);
        await c.write(_enc.encode(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${
            _enc.encode(body).length
          }\r\n\r\n${body}`,
        ));
      }
    } catch {
      // A failed handshake (the proxy refused our certificate) or a closed connection.
    } finally {
      conns.delete(c);
      try {
        c.close();
      } catch {
        // Closed already.
      }
    }
  };
  (async () => {
    try {
      for await (const c of listener) void serve(c);
    } catch {
      // Closed.
    }
  })();
  return api;
}
