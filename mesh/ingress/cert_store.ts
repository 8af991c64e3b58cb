/**
 * The certificates of one TLS ingress listener, read from the operator's files and read again
 * when the files change on disk (their size or modification time, polled), so a renewed
 * certificate is served without a restart. A replacement that cannot be used (unreadable, not
 * PEM, a key that does not match the certificate) is refused with one error line and the
 * previous certificate stays in service; the files are tried again when they change again.
 * @module
 */
import tls from "node:tls";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Logger } from "../../common/log.ts";
import { certDnsNames, SniIndex } from "./sni.ts";

/** Largest certificate or key file read (a long chain is a few tens of KiB). */
export const MAX_CERT_FILE_BYTES = 1024 * 1024;

/** One certificate and key file pair. */
export interface CertFiles {
  /** PEM certificate, optionally followed by its chain. */
  readonly cert_file: string;
  /** PEM private key. */
  readonly key_file: string;
}

/** A loaded certificate. */
export interface LoadedCert {
  /** PEM certificate chain. */
  readonly certPem: string;
  /** PEM key. Secret: never logged. */
  readonly keyPem: string;
  /** Names it serves. */
  readonly names: readonly string[];
  /** Serial number (hex), for the log. */
  readonly serial: string;
  /** Subject, for the log. */
  readonly subject: string;
  /** Expiry, as the certificate writes it. */
  readonly notAfter: string;
  /** The TLS context built from it. */
  readonly context: tls.SecureContext;
}

/** Reads and checks one pair; throws an Error saying what is wrong with which file. */
export async function loadCert(f: CertFiles): Promise<LoadedCert> {
  const certPem = await _readBounded(f.cert_file);
  const keyPem = await _readBounded(f.key_file);
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch (e) {
    throw new Error(`${f.cert_file}: not a PEM certificate (${(e as Error).message})`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new Error(`${f.key_file}: not a PEM private key (${(e as Error).message})`);
  }
  if (!x.checkPrivateKey(key)) {
    throw new Error(`${f.key_file} is not the key of the certificate in ${f.cert_file}`);
  }
  return {
    certPem,
    keyPem,
    names: certDnsNames(x.subjectAltName, x.subject),
    serial: x.serialNumber,
    subject: x.subject.replace(/\n/g, ", "),
    notAfter: x.validTo,
    context: tls.createSecureContext({ cert: certPem, key: keyPem }),
  };
}

async function _readBounded(path: string): Promise<string> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (st.size > MAX_CERT_FILE_BYTES) {
    throw new Error(`${path} is ${st.size} bytes, over ${MAX_CERT_FILE_BYTES}`);
  }
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** What identifies a version of a file pair on disk. */
async function _signature(f: CertFiles): Promise<string> {
  const parts: string[] = [];
  for (const p of [f.cert_file, f.key_file]) {
    try {
      const st = await Deno.stat(p);
      parts.push(`${st.size}:${st.mtime?.getTime() ?? 0}:${st.ino ?? 0}`);
    } catch {
      parts.push("missing");
    }
  }
  return parts.join("|");
}

/** The certificates of one listener, kept in step with their files. */
export class IngressCertStore {
  readonly #files: readonly CertFiles[];
  readonly #log: Logger;
  readonly #certs: LoadedCert[];
  readonly #seen: string[];
  #index: SniIndex;
  readonly #listeners = new Set<(defaultCert: LoadedCert) => void>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #polling = false;

  private constructor(
    files: readonly CertFiles[],
    certs: LoadedCert[],
    seen: string[],
    log: Logger,
  ) {
    this.#files = files;
    this.#certs = certs;
    this.#seen = seen;
    this.#log = log;
    this.#index = new SniIndex(certs);
  }

  /**
   * Loads every pair (throws when one cannot be used: a listener does not start without its
   * certificates) and polls the files every `intervalMs` (0: never).
   */
  static async open(
    files: readonly CertFiles[],
    logger: Logger,
    intervalMs: number,
  ): Promise<IngressCertStore> {
    const certs: LoadedCert[] = [];
    const seen: string[] = [];
    for (const f of files) {
      seen.push(await _signature(f));
      certs.push(await loadCert(f));
    }
    const store = new IngressCertStore(files, certs, seen, logger);
    if (intervalMs > 0) {
      store.#timer = setInterval(() => void store.poll(), intervalMs);
      Deno.unrefTimer(store.#timer);
    }
    return store;
  }

  /** The certificate served to clients without SNI or with a name no certificate carries. */
  get defaultCert(): LoadedCert {
    return this.#certs[0]!;
  }

  /** The certificate for a client's server name. */
  certFor(serverName: string | null | undefined): LoadedCert {
    return this.#certs[this.#index.pick(serverName)]!;
  }

  /** Calls `f` with the new default certificate whenever it changes. */
  onDefaultChange(f: (c: LoadedCert) => void): void {
    this.#listeners.add(f);
  }

  /**
   * Reads again the pairs whose files changed since last seen. A pair that fails keeps its
   * previous certificate; its failure is logged once per version of the files.
   */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      for (const [i, f] of this.#files.entries()) {
        const sig = await _signature(f);
        if (sig === this.#seen[i]) continue;
        this.#seen[i] = sig;
        let c: LoadedCert;
        try {
          c = await loadCert(f);
        } catch (e) {
          this.#log.error("ingress certificate not replaced; serving the previous one", {
            cert_file: f.cert_file,
            reason: (e as Error).message,
            serving_serial: this.#certs[i]!.serial,
          });
          continue;
        }
        this.#certs[i] = c;
        this.#index = new SniIndex(this.#certs);
        this.#log.info("ingress certificate reloaded", {
          cert_file: f.cert_file,
          subject: c.subject,
          serial: c.serial,
          not_after: c.notAfter,
        });
        if (i === 0) { for (const l of this.#listeners) l(c); }
      }
    } finally {
      this.#polling = false;
    }
  }

  /** Stops polling. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#listeners.clear();
  }
}
