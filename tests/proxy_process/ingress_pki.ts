/**
 * Operator-style certificates for the ingress tests, made with the `openssl` command the way
 * an operator would (self-signed, so each certificate is also the CA a client trusts).
 * @module
 */

/** A certificate and key on disk. */
export interface CertPair {
  /** PEM certificate file. */
  cert: string;
  /** PEM key file. */
  key: string;
  /** Serial as openssl prints it (upper-case hex). */
  serial: string;
}

async function _openssl(args: string[]): Promise<string> {
  const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * A self-signed certificate for `names` (the first is the CN) in `dir/<file>.pem`, with the key
 * in `dir/<file>.key`; with `key` given, signed for that existing key (a renewal).
 */
export async function makeCert(
  dir: string,
  file: string,
  names: string[],
  key?: string,
): Promise<CertPair> {
  const cert = `${dir}/${file}.pem`;
  const keyFile = key ?? `${dir}/${file}.key`;
  const san = names.map((n) => `DNS:${n}`).join(",");
  await _openssl([
    "req",
    "-x509",
    ...(key === undefined
      ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile]
      : ["-key", key]),
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=${names[0]}`,
    "-addext",
    `subjectAltName=${san}`,
  ]);
  const serial = (await _openssl(["x509", "-in", cert, "-noout", "-serial"])).trim()
    .replace(/^serial=/, "");
  return { cert, key: keyFile, serial };
}
