/**
 * Distrusted intermediates: CA certificates a root signed that may no longer vouch for anyone
 * (an intermediate rotated out after its key may have leaked). A leaf one of them signed is
 * refused at every chain check even though the chain still leads to a trusted root. Uses
 * `node:crypto` only, so proxy workers check it without an x509 library.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { issuedBy } from "./chain.ts";
import { splitPemCerts } from "./pem.ts";

/** Most distrusted intermediates a checker holds (the CA's own bound). */
export const MAX_DISTRUSTED_INTERMEDIATES = 16;

/** A parsed list of distrusted intermediates, checked against peers' leaves. */
export class DistrustedIssuers {
  readonly #certs: readonly X509Certificate[];
  readonly #pems: readonly string[];

  /** Parses `pems` (one certificate each); ones that do not parse are skipped. */
  constructor(pems: readonly string[] = []) {
    const certs: X509Certificate[] = [];
    const kept: string[] = [];
    for (const pem of pems.slice(0, MAX_DISTRUSTED_INTERMEDIATES)) {
      const block = splitPemCerts(pem)[0];
      if (block === undefined) continue;
      try {
        certs.push(new X509Certificate(block));
        kept.push(pem);
      } catch {
        // Not a certificate: nothing it could have signed verifies either.
      }
    }
    this.#certs = certs;
    this.#pems = kept;
  }

  /** How many intermediates are distrusted. */
  get size(): number {
    return this.#certs.length;
  }

  /** The PEMs held, for handing to a worker. */
  get pems(): readonly string[] {
    return this.#pems;
  }

  /**
   * The distrusted intermediate that signed `leaf` (DER bytes or parsed), or null. A leaf that
   * does not parse is no one's: the path check refuses it anyway.
   */
  signerOf(leaf: Uint8Array | X509Certificate): X509Certificate | null {
    if (this.#certs.length === 0) return null;
    let cert: X509Certificate;
    try {
      cert = leaf instanceof X509Certificate ? leaf : new X509Certificate(leaf);
    } catch {
      return null;
    }
    return this.#certs.find((d) => issuedBy(cert, d)) ?? null;
  }

  /** Whether a distrusted intermediate signed `leaf`. */
  refuses(leaf: Uint8Array | X509Certificate): boolean {
    return this.signerOf(leaf) !== null;
  }
}

/** What a refusal says: the intermediate by its SHA-256 fingerprint. */
export function distrustReason(signer: X509Certificate): string {
  return `certificate comes from distrusted intermediate ${signer.fingerprint256}`;
}
