/**
 * The CA seed: a root certificate and its key kept as two files (`ca.pem`, `ca.key`) that every
 * control node is given. The first leader proposes the seed as the cluster CA, so the seed and
 * the replicated CA are the same root, and a control node can issue its own certificate before
 * Raft has ever run (the Raft port itself needs one).
 * @module
 */
import * as x509 from "./_x509.ts";
import {
  EC_ALGORITHM,
  exportPrivateKeyPem,
  fromPem,
  isTrustDomain,
  splitPemCerts,
} from "../../common/tls/mod.ts";
import { type Logger, nullLogger } from "../../common/log.ts";
import { dirOf, writeFileAtomic } from "../../common/atomic_write.ts";
import { CaError, type CaState, createCa, rootOfflineError } from "./ca.ts";
import { parseCaState } from "./state_codec.ts";
import { checkIntermediate } from "./intermediate.ts";

/** File name of the seed root certificate written by {@linkcode writeSeedCa}. */
export const SEED_CERT_FILE = "ca.pem";
/** File name of the seed root key written by {@linkcode writeSeedCa}. */
export const SEED_KEY_FILE = "ca.key";
/** File name of the intermediate certificate of an offline-root seed. */
export const INTERMEDIATE_CERT_FILE = "intermediate.pem";
/** File name of the intermediate key of an offline-root seed. */
export const INTERMEDIATE_KEY_FILE = "intermediate.key";
/** Largest seed file read; a root certificate or key is a few KiB at most. */
export const MAX_SEED_FILE_BYTES = 64 * 1024;

const _CA_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;
const _ROOT_CN = /^(.+) root ([1-9][0-9]{0,8})$/;

/** A seed file that is missing, unreadable or does not hold what it should. */
export class SeedCaError extends Error {
  /** The file at fault (the directory for write errors). */
  readonly file: string;
  /** Creates the error; the message starts with the file name. */
  constructor(file: string, message: string, cause?: unknown) {
    super(`${file}: ${message}`, { cause });
    this.name = "SeedCaError";
    this.file = file;
  }
}

/** Options of {@linkcode caStateFromPem}. */
export interface CaFromPemOptions {
  /** The root certificate, PEM (exactly one certificate). */
  certPem: string;
  /** Its private key, PKCS#8 PEM (ECDSA P-256). */
  keyPem: string;
  /** The trust domain the root must carry as URI SAN `spiffe://<trustDomain>`. */
  trustDomain: string;
  /** Current time, ms since the epoch: the root must be valid now. */
  now: number;
}

/**
 * Builds a one-root {@linkcode CaState} from a root certificate and key made elsewhere (a seed
 * file, `openssl`). Checks that the certificate is a self-signed CA certificate allowed to sign
 * certificates, valid now, for `trustDomain`, and that the key is its key; throws `CaError`
 * (`invalid_state`) saying which check failed otherwise.
 */
export async function caStateFromPem(opts: CaFromPemOptions): Promise<CaState> {
  const root = await _checkedRoot(opts.certPem, opts.trustDomain, opts.now);
  const keyPem = await _matchingKeyPem(opts.keyPem, root.cert);
  return parseCaState({
    version: 1,
    trustDomain: opts.trustDomain,
    name: root.name,
    activeRootId: root.id,
    roots: [{
      id: root.id,
      generation: root.generation,
      certPem: root.certPem,
      keyPem,
      notBefore: root.notBefore,
      notAfter: root.notAfter,
    }],
    revoked: [],
  });
}

/**
 * Builds the {@linkcode CaState} of a control node whose root stays offline: the root
 * certificate (checked as {@linkcode caStateFromPem} checks it, without its key) and an
 * intermediate it signed, with the intermediate's key (`checkIntermediate`).
 */
export async function caStateFromOfflineSeed(opts: {
  rootCertPem: string;
  intermediateCertPem: string;
  intermediateKeyPem: string;
  trustDomain: string;
  now: number;
}): Promise<CaState> {
  const root = await _checkedRoot(opts.rootCertPem, opts.trustDomain, opts.now);
  const intermediate = await checkIntermediate({
    certPem: opts.intermediateCertPem,
    keyPem: opts.intermediateKeyPem,
    rootCertPem: root.certPem,
    trustDomain: opts.trustDomain,
    now: opts.now,
  });
  return parseCaState({
    version: 1,
    trustDomain: opts.trustDomain,
    name: root.name,
    activeRootId: root.id,
    roots: [{
      id: root.id,
      generation: root.generation,
      certPem: root.certPem,
      notBefore: root.notBefore,
      notAfter: root.notAfter,
      intermediate,
    }],
    revoked: [],
  });
}

/** The checks every seed root passes, and what the CA state records of it. */
async function _checkedRoot(certPem: string, trustDomain: string, now: number): Promise<{
  cert: x509.X509Certificate;
  certPem: string;
  id: string;
  name: string;
  generation: number;
  notBefore: number;
  notAfter: number;
}> {
  const fail = (msg: string): never => {
    throw new CaError("invalid_state", msg);
  };
  if (!isTrustDomain(trustDomain)) fail(`invalid trust domain ${trustDomain}`);
  const blocks = splitPemCerts(certPem);
  if (blocks.length !== 1) fail(`expected one certificate, found ${blocks.length}`);
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(blocks[0]!);
  } catch (e) {
    return fail(`certificate does not parse: ${(e as Error).message}`);
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) fail("certificate is not a CA certificate (basicConstraints CA:TRUE missing)");
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    fail("certificate key usage does not allow keyCertSign");
  }
  const alg = cert.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== "ECDSA" || alg.namedCurve !== "P-256") {
    fail(`root key is ${alg.name} ${alg.namedCurve ?? ""}; expected ECDSA P-256`.trim());
  }
  if (cert.subject !== cert.issuer || !(await _verifiesItself(cert))) {
    fail("certificate is not a self-signed root");
  }
  const notBefore = cert.notBefore.getTime();
  const notAfter = cert.notAfter.getTime();
  if (now >= notAfter) fail(`root expired at ${cert.notAfter.toISOString()}`);
  if (now < notBefore) fail(`root is not valid before ${cert.notBefore.toISOString()}`);
  const uris = _uriSans(cert);
  const want = `spiffe://${trustDomain}`;
  if (!uris.includes(want)) {
    fail(`root is for ${uris.length > 0 ? uris.join(", ") : "no trust domain"}, expected ${want}`);
  }
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension) ??
    await x509.SubjectKeyIdentifierExtension.create(await cert.publicKey.export());
  const cn = /(?:^|,\s*)CN=([^,]+)/.exec(cert.subject)?.[1]?.trim() ?? "";
  const m = _ROOT_CN.exec(cn);
  return {
    cert,
    certPem: blocks[0]!,
    id: ski.keyId.toLowerCase(),
    name: m && _CA_NAME.test(m[1]!) ? m[1]! : "skein",
    generation: m ? Number(m[2]) : 1,
    notBefore,
    notAfter,
  };
}

/** Options of {@linkcode loadOrCreateSeedCa}. */
export interface LoadSeedOptions {
  /** Path of the root certificate (`tls.ca_cert_file`). */
  certFile: string;
  /** Path of the root key (`tls.ca_key_file`). */
  keyFile: string;
  /** Trust domain the root must be for. */
  trustDomain: string;
  /** When both files are absent: create a new CA and write them (else that is an error). */
  create: boolean;
  /** Current time, ms since the epoch. */
  now: number;
  /** Logger. @default nullLogger */
  logger?: Logger;
  /**
   * The intermediate's certificate (`tls.intermediate_cert_file`): when it or its key exists,
   * the root is kept offline and `certFile` holds only the root certificate.
   */
  intermediateCertFile?: string;
  /** The intermediate's key (`tls.intermediate_key_file`). */
  intermediateKeyFile?: string;
}

/**
 * Reads the seed CA from `certFile` and `keyFile`. When both are absent and `create` is set, a
 * new CA is created and written (key 0600, atomically). Only one of the two present, an
 * unreadable file, garbage, a key that does not match, or a root for another trust domain is a
 * {@linkcode SeedCaError} naming the file.
 */
export async function loadOrCreateSeedCa(opts: LoadSeedOptions): Promise<CaState> {
  const log = opts.logger ?? nullLogger;
  const certPem = await _readOptional(opts.certFile);
  const keyPem = await _readOptional(opts.keyFile);
  const iCertPem = opts.intermediateCertFile === undefined
    ? null
    : await _readOptional(opts.intermediateCertFile);
  const iKeyPem = opts.intermediateKeyFile === undefined
    ? null
    : await _readOptional(opts.intermediateKeyFile);
  if (iCertPem !== null || iKeyPem !== null) {
    return await _loadOfflineSeed(opts, { certPem, keyPem, iCertPem, iKeyPem }, log);
  }
  if (certPem === null && keyPem === null) {
    if (!opts.create) {
      throw new SeedCaError(opts.certFile, `CA seed not found (nor ${opts.keyFile})`);
    }
    const ca = await createCa({ trustDomain: opts.trustDomain, now: opts.now });
    const root = ca.roots[0]!;
    await _writeAtomic(opts.keyFile, root.keyPem!);
    await _writeAtomic(opts.certFile, root.certPem);
    log.info("CA seed created", {
      cert_file: opts.certFile,
      key_file: opts.keyFile,
      root: root.id,
      trust_domain: opts.trustDomain,
    });
    return ca;
  }
  if (certPem === null) {
    throw new SeedCaError(opts.certFile, `missing, but its key ${opts.keyFile} exists`);
  }
  if (keyPem === null) {
    throw new SeedCaError(opts.keyFile, `missing, but its certificate ${opts.certFile} exists`);
  }
  if (!certPem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new SeedCaError(opts.certFile, "holds no PEM certificate");
  }
  if (!keyPem.includes("-----BEGIN PRIVATE KEY-----")) {
    throw new SeedCaError(opts.keyFile, "holds no PKCS#8 PEM private key (BEGIN PRIVATE KEY)");
  }
  try {
    const st = await Deno.stat(opts.keyFile);
    if (st.mode !== null && (st.mode & 0o077) !== 0) {
      log.warn("CA seed key is readable by group or others; chmod 600 it", {
        key_file: opts.keyFile,
        mode: (st.mode & 0o777).toString(8),
      });
    }
  } catch {
    // Read a moment ago; a stat failure now changes nothing about its content.
  }
  try {
    return await caStateFromPem({ certPem, keyPem, trustDomain: opts.trustDomain, now: opts.now });
  } catch (e) {
    if (!(e instanceof CaError)) throw e;
    const keyProblem = /private key|key does not match/.test(e.message);
    throw new SeedCaError(keyProblem ? opts.keyFile : opts.certFile, e.message, e);
  }
}

/**
 * Writes the active root of `state` as `DIR/ca.pem` and `DIR/ca.key` (both 0600, written to a
 * temp file, fsynced, renamed, directory fsynced). Refuses to overwrite either file: replacing
 * a CA key by mistake strands every certificate it signed.
 */
export async function writeSeedCa(
  dir: string,
  state: CaState,
): Promise<{ certFile: string; keyFile: string }> {
  const root = state.roots.find((r) => r.id === state.activeRootId);
  if (!root) throw new CaError("invalid_state", `active root ${state.activeRootId} not found`);
  if (root.keyPem === undefined) throw rootOfflineError();
  return await writeCertAndKey(dir, SEED_CERT_FILE, root.certPem, SEED_KEY_FILE, root.keyPem);
}

/**
 * Writes what a control node of an offline-root CA needs: the root certificate as
 * `DIR/ca.pem`, the active intermediate as `DIR/intermediate.pem` and `DIR/intermediate.key`
 * (all 0600, atomically, never over an existing file). No root key is written.
 */
export async function writeOfflineSeed(
  dir: string,
  state: CaState,
): Promise<{ certFile: string; intermediateCertFile: string; intermediateKeyFile: string }> {
  const root = state.roots.find((r) => r.id === state.activeRootId);
  const i = root?.intermediate;
  if (!root || i === undefined) {
    throw new CaError("invalid_state", "this CA has no intermediate; use writeSeedCa");
  }
  const certFile = `${dir}/${SEED_CERT_FILE}`;
  if (await _exists(certFile)) {
    throw new SeedCaError(certFile, "already exists; refusing to overwrite");
  }
  const w = await writeCertAndKey(
    dir,
    INTERMEDIATE_CERT_FILE,
    i.certPem,
    INTERMEDIATE_KEY_FILE,
    i.keyPem,
  );
  await _writeAtomic(certFile, root.certPem);
  return { certFile, intermediateCertFile: w.certFile, intermediateKeyFile: w.keyFile };
}

/**
 * Writes a certificate and its key as `DIR/<certName>` and `DIR/<keyName>` (0600, atomically,
 * directory 0700). Refuses to overwrite either file: replacing a CA key by mistake strands
 * every certificate it signed.
 */
export async function writeCertAndKey(
  dir: string,
  certName: string,
  certPem: string,
  keyName: string,
  keyPem: string,
): Promise<{ certFile: string; keyFile: string }> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const certFile = `${dir}/${certName}`;
  const keyFile = `${dir}/${keyName}`;
  for (const f of [certFile, keyFile]) {
    if (await _exists(f)) throw new SeedCaError(f, "already exists; refusing to overwrite");
  }
  await _writeAtomic(keyFile, keyPem);
  await _writeAtomic(certFile, certPem);
  return { certFile, keyFile };
}

/** The seed of a control node whose root is offline: root certificate + intermediate pair. */
async function _loadOfflineSeed(
  opts: LoadSeedOptions,
  f: {
    certPem: string | null;
    keyPem: string | null;
    iCertPem: string | null;
    iKeyPem: string | null;
  },
  log: Logger,
): Promise<CaState> {
  const iCertFile = opts.intermediateCertFile!;
  const iKeyFile = opts.intermediateKeyFile!;
  if (f.iCertPem === null) {
    throw new SeedCaError(iCertFile, `missing, but the intermediate key ${iKeyFile} exists`);
  }
  if (f.iKeyPem === null) {
    throw new SeedCaError(iKeyFile, `missing, but the intermediate ${iCertFile} exists`);
  }
  if (f.certPem === null) {
    throw new SeedCaError(
      opts.certFile,
      `missing: the root certificate must sit beside the intermediate ${iCertFile}`,
    );
  }
  if (f.keyPem !== null) {
    // The point of an intermediate is that no server holds the root key.
    throw new SeedCaError(
      opts.keyFile,
      `a root key beside the intermediate ${iCertFile}: move it off this machine (the ` +
        `intermediate signs; the root key is needed only to sign the next intermediate)`,
    );
  }
  await _warnIfOpen(iKeyFile, log);
  try {
    return await caStateFromOfflineSeed({
      rootCertPem: f.certPem,
      intermediateCertPem: f.iCertPem,
      intermediateKeyPem: f.iKeyPem,
      trustDomain: opts.trustDomain,
      now: opts.now,
    });
  } catch (e) {
    if (!(e instanceof CaError)) throw e;
    const file = e.code === "invalid_intermediate"
      ? (/key/.test(e.message) && !/key usage/.test(e.message) ? iKeyFile : iCertFile)
      : opts.certFile;
    throw new SeedCaError(file, e.message, e);
  }
}

async function _warnIfOpen(keyFile: string, log: Logger): Promise<void> {
  try {
    const st = await Deno.stat(keyFile);
    if (st.mode !== null && (st.mode & 0o077) !== 0) {
      log.warn("CA key is readable by group or others; chmod 600 it", {
        key_file: keyFile,
        mode: (st.mode & 0o777).toString(8),
      });
    }
  } catch {
    // Read a moment ago; a stat failure now changes nothing about its content.
  }
}

// ---------------------------------------------------------------------------------------------

async function _verifiesItself(cert: x509.X509Certificate): Promise<boolean> {
  try {
    return await cert.verify({ signatureOnly: true });
  } catch {
    return false;
  }
}

function _uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!san) return [];
  return san.names.toJSON().filter((n) => n.type === "url").map((n) => n.value);
}

/** Proves `keyPem` is the key of `cert` by a signature the certificate's key verifies. */
async function _matchingKeyPem(keyPem: string, cert: x509.X509Certificate): Promise<string> {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey(
      "pkcs8",
      fromPem(keyPem, "PRIVATE KEY"),
      EC_ALGORITHM,
      true,
      ["sign"],
    );
  } catch (e) {
    throw new CaError(
      "invalid_state",
      `private key is not a PKCS#8 ECDSA P-256 key: ${(e as Error).message}`,
    );
  }
  const probe = crypto.getRandomValues(new Uint8Array(32));
  const sig = await crypto.subtle.sign(EC_ALGORITHM, key, probe);
  const pub = await cert.publicKey.export(EC_ALGORITHM, ["verify"]);
  if (!(await crypto.subtle.verify(EC_ALGORITHM, pub, sig, probe))) {
    throw new CaError("invalid_state", "private key does not match the root certificate");
  }
  // Re-exported so the state always holds the canonical PKCS#8 form createCa writes.
  return await exportPrivateKeyPem(key);
}

async function _readOptional(path: string): Promise<string | null> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new SeedCaError(path, `cannot read: ${(e as Error).message}`, e);
  }
  if (!st.isFile) throw new SeedCaError(path, "is not a regular file");
  if (st.size > MAX_SEED_FILE_BYTES) {
    throw new SeedCaError(path, `is ${st.size} bytes, over ${MAX_SEED_FILE_BYTES}`);
  }
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new SeedCaError(path, `cannot read: ${(e as Error).message}`, e);
  }
}

async function _exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Atomic, durable write (`common/atomic_write.ts`), its errors worded as seed errors. */
async function _writeAtomic(path: string, text: string): Promise<void> {
  try {
    await Deno.mkdir(dirOf(path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(path, text, { mode: 0o600 });
  } catch (e) {
    throw new SeedCaError(path, `cannot write: ${(e as Error).message}`, e);
  }
}
