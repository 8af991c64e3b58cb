/**
 * `skein ca create`: makes the CA seed every control node of a cluster is given, so control
 * nodes can speak mTLS to each other before Raft replicates the CA. With `--offline-root` the
 * root key goes to a directory meant to leave the server and the seed holds an intermediate;
 * `skein ca intermediate` signs the next intermediate where that root key is kept.
 * @module
 */
import {
  CaError,
  caStateFromPem,
  certTrustDomain,
  createCa,
  createOfflineRootCa,
  INTERMEDIATE_CERT_FILE,
  INTERMEDIATE_KEY_FILE,
  MAX_SEED_FILE_BYTES,
  SEED_CERT_FILE,
  SEED_KEY_FILE,
  SeedCaError,
  signIntermediate,
  writeCertAndKey,
  writeOfflineSeed,
  writeSeedCa,
} from "../control/ca/mod.ts";
import { isTrustDomain } from "../common/tls/mod.ts";
import { type CommandIo, EXIT } from "./cli/io.ts";

/** Options of {@linkcode runCaCreate}. */
export interface CaCreateOptions {
  /** Directory that receives the seed files control nodes get. */
  outDir: string;
  /** Trust domain of every SPIFFE id the CA issues. */
  trustDomain: string;
  /** With it: the root and its key go here (to keep offline), `outDir` gets an intermediate. */
  offlineRootDir?: string | undefined;
  io: CommandIo;
}

/**
 * Creates `ca.pem` (public) and `ca.key` (0600) in `outDir`; with `offlineRootDir`, the root
 * pair goes there and `outDir` gets `ca.pem`, `intermediate.pem` and `intermediate.key`.
 * Refuses to overwrite any file.
 */
export async function runCaCreate(opts: CaCreateOptions): Promise<number> {
  if (!isTrustDomain(opts.trustDomain)) {
    opts.io.stderr(
      `skein ca create: --trust-domain: expected a DNS-like name, got ${opts.trustDomain}\n`,
    );
    return EXIT.usage;
  }
  try {
    if (opts.offlineRootDir !== undefined) return await _createOffline(opts, opts.offlineRootDir);
    const state = await createCa({ trustDomain: opts.trustDomain, now: Date.now() });
    await writeSeedCa(opts.outDir, state);
  } catch (e) {
    if (!(e instanceof SeedCaError)) throw e;
    opts.io.stderr(`skein ca create: ${e.message}\n`);
    return EXIT.failure;
  }
  opts.io.stdout(
    `wrote ${opts.outDir}/ca.pem and ${opts.outDir}/ca.key (0600) for trust domain ${opts.trustDomain}\n` +
      `copy both to every control node (tls.ca_cert_file, tls.ca_key_file) and ca.pem to every proxy (ca_file)\n`,
  );
  return EXIT.ok;
}

async function _createOffline(opts: CaCreateOptions, rootDir: string): Promise<number> {
  const real = (d: string) => Deno.realPath(d).catch(() => d.replace(/\/+$/, ""));
  if (await real(rootDir) === await real(opts.outDir)) {
    opts.io.stderr(
      "skein ca create: --offline-root must be another directory than --out: the root key " +
        "must not travel with the files the servers get\n",
    );
    return EXIT.usage;
  }
  // Every file checked before any is written, so a refusal leaves no half-made CA behind.
  const targets = [
    `${rootDir}/${SEED_CERT_FILE}`,
    `${rootDir}/${SEED_KEY_FILE}`,
    `${opts.outDir}/${SEED_CERT_FILE}`,
    `${opts.outDir}/${INTERMEDIATE_CERT_FILE}`,
    `${opts.outDir}/${INTERMEDIATE_KEY_FILE}`,
  ];
  for (const f of targets) {
    if (await Deno.lstat(f).then(() => true, () => false)) {
      throw new SeedCaError(f, "already exists; refusing to overwrite");
    }
  }
  const made = await createOfflineRootCa({ trustDomain: opts.trustDomain, now: Date.now() });
  // The root first: if the seed cannot be written, nothing has been made that a node could use.
  await writeCertAndKey(
    rootDir,
    SEED_CERT_FILE,
    made.root.certPem,
    SEED_KEY_FILE,
    made.root.keyPem,
  );
  const w = await writeOfflineSeed(opts.outDir, made.state);
  opts.io.stdout(
    `wrote the root ${rootDir}/${SEED_CERT_FILE} and its key ${rootDir}/${SEED_KEY_FILE} (0600): ` +
      `move ${rootDir} off this machine; it is needed only to sign the next intermediate\n` +
      `wrote ${w.certFile}, ${w.intermediateCertFile} and ${w.intermediateKeyFile} (0600) for trust domain ${opts.trustDomain}\n` +
      `copy these three to every control node (tls.ca_cert_file, tls.intermediate_cert_file, ` +
      `tls.intermediate_key_file) and ca.pem to every proxy (ca_file)\n`,
  );
  return EXIT.ok;
}

/** Options of {@linkcode runCaIntermediate}. */
export interface CaIntermediateOptions {
  /** The offline root certificate. */
  rootCertFile: string;
  /** Its key. */
  rootKeyFile: string;
  /** Directory that receives `intermediate.pem` and `intermediate.key`. */
  outDir: string;
  io: CommandIo;
}

/** Signs a new intermediate with the offline root (checked first) into `outDir`. */
export async function runCaIntermediate(opts: CaIntermediateOptions): Promise<number> {
  const fail = (msg: string): number => {
    opts.io.stderr(`skein ca intermediate: ${msg}\n`);
    return EXIT.failure;
  };
  let certPem: string;
  let keyPem: string;
  try {
    certPem = await _readSmall(opts.rootCertFile);
    keyPem = await _readSmall(opts.rootKeyFile);
  } catch (e) {
    return fail((e as Error).message);
  }
  const now = Date.now();
  try {
    // The same checks a control node makes of a seed root, and the key must be its key.
    const td = certTrustDomain(certPem) ?? "";
    await caStateFromPem({ certPem, keyPem, trustDomain: td, now });
    const made = await signIntermediate({ rootCertPem: certPem, rootKeyPem: keyPem, now });
    const w = await writeCertAndKey(
      opts.outDir,
      INTERMEDIATE_CERT_FILE,
      made.certPem,
      INTERMEDIATE_KEY_FILE,
      made.keyPem,
    );
    opts.io.stdout(
      `wrote ${w.certFile} and ${w.keyFile} (0600), signed by ${opts.rootCertFile}\n` +
        `install it: skein ctl ca rotate --intermediate-cert ${w.certFile} --intermediate-key ${w.keyFile}\n`,
    );
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CaError || e instanceof SeedCaError) return fail(e.message);
    throw e;
  }
}

async function _readSmall(path: string): Promise<string> {
  const st = await Deno.stat(path).catch((e) => {
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  });
  if (!st.isFile || st.size > MAX_SEED_FILE_BYTES) {
    throw new Error(`${path}: not a regular file of at most ${MAX_SEED_FILE_BYTES} bytes`);
  }
  return await Deno.readTextFile(path);
}
