/**
 * The proxy's identity on disk: key, certificate and trust bundle in `data_dir`, written
 * atomically with mode 0600 so a crash never leaves a key that does not match its certificate.
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { TlsMaterial } from "../../common/tls/mod.ts";
import { writeFileAtomic } from "../../common/atomic_write.ts";

/** The file holding all three PEMs; the source of truth on load. */
export const IDENTITY_FILE = "identity.json";
/** Copies for operators (`openssl x509 -in cert.pem`); never read back. */
export const CERT_FILE = "cert.pem";
/** See {@linkcode CERT_FILE}. */
export const KEY_FILE = "key.pem";
/** See {@linkcode CERT_FILE}. */
export const CA_FILE = "ca.pem";
/** Largest identity file read back (certificate + key + a few roots fit in a few KiB). */
export const MAX_IDENTITY_FILE_BYTES = 256 * 1024;

const _FILE_MODE = 0o600;
const _DIR_MODE = 0o700;

/** Why stored material could not be used. */
export class IdentityStoreError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "IdentityStoreError";
  }
}

/** Whether `keyPem` is the private key of `certPem`'s public key. */
export function keyMatchesCert(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/**
 * Writes `material` into `dir` (created 0700 when missing): `identity.json` atomically
 * (temp file 0600, fsync, rename, directory fsync), then the PEM copies the same way.
 */
export async function saveIdentity(dir: string, material: TlsMaterial): Promise<void> {
  if (!keyMatchesCert(material.certPem, material.keyPem)) {
    throw new IdentityStoreError("refusing to store a key that does not match its certificate");
  }
  await Deno.mkdir(dir, { recursive: true, mode: _DIR_MODE });
  const json = JSON.stringify({
    version: 1,
    certPem: material.certPem,
    keyPem: material.keyPem,
    caPem: material.caPem,
  });
  const opts = { mode: _FILE_MODE };
  await writeFileAtomic(`${dir}/${IDENTITY_FILE}`, json, opts);
  await writeFileAtomic(`${dir}/${KEY_FILE}`, material.keyPem, opts);
  await writeFileAtomic(`${dir}/${CERT_FILE}`, material.certPem, opts);
  await writeFileAtomic(`${dir}/${CA_FILE}`, material.caPem, opts);
}

/**
 * Reads the material saved in `dir`; null when there is none yet. Throws
 * {@linkcode IdentityStoreError} when the file is damaged or the key does not match.
 */
export async function loadIdentity(dir: string): Promise<TlsMaterial | null> {
  const path = `${dir}/${IDENTITY_FILE}`;
  let text: string;
  try {
    const st = await Deno.stat(path);
    if (st.size > MAX_IDENTITY_FILE_BYTES) {
      throw new IdentityStoreError(`${path} is ${st.size} bytes, over ${MAX_IDENTITY_FILE_BYTES}`);
    }
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new IdentityStoreError(`${path} is not valid JSON`);
  }
  const o = v as Record<string, unknown>;
  if (
    typeof o !== "object" || o === null || o.version !== 1 || typeof o.certPem !== "string" ||
    typeof o.keyPem !== "string" || typeof o.caPem !== "string"
  ) {
    throw new IdentityStoreError(`${path} does not hold {version:1, certPem, keyPem, caPem}`);
  }
  if (!keyMatchesCert(o.certPem, o.keyPem)) {
    throw new IdentityStoreError(`${path}: key does not match certificate`);
  }
  return { certPem: o.certPem, keyPem: o.keyPem, caPem: o.caPem };
}
