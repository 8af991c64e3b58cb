/**
 * What a proxy needs to know about a certificate: validity, SPIFFE id, when to renew.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { parseSpiffeId, type SpiffeId, uriSans } from "../../common/tls.ts";

/** Fraction of a certificate's lifetime after which it is renewed (SPEC section 5). */
export const RENEW_AT_FRACTION = 2 / 3;

/** The facts of one leaf certificate. */
export interface CertInfo {
  /** Validity start, ms since the epoch. */
  readonly notBefore: number;
  /** Validity end, ms since the epoch. */
  readonly notAfter: number;
  /** The SPIFFE id of its single URI SAN, or null when it has none or several. */
  readonly spiffeId: SpiffeId | null;
  /** Hex serial number. */
  readonly serial: string;
  /** Issuer distinguished name. */
  readonly issuer: string;
}

/** Parses the first certificate of a PEM string; throws a TypeError on anything else. */
export function parseCert(pem: string): CertInfo {
  let c: X509Certificate;
  try {
    c = new X509Certificate(pem);
  } catch (e) {
    throw new TypeError(`not a PEM certificate: ${(e as Error).message}`);
  }
  const uris = uriSans(c.subjectAltName);
  const serial = c.serialNumber.toLowerCase();
  return {
    notBefore: Date.parse(c.validFrom),
    notAfter: Date.parse(c.validTo),
    spiffeId: uris.length === 1 ? parseSpiffeId(uris[0]!) : null,
    // Whole bytes, as openssl prints them (Deno drops a leading zero nibble).
    serial: serial.length % 2 ? "0" + serial : serial,
    issuer: c.issuer,
  };
}

/** When to renew: issued + 2/3 of the lifetime, ms since the epoch. */
export function renewAt(cert: CertInfo | string): number {
  const c = typeof cert === "string" ? parseCert(cert) : cert;
  return c.notBefore + Math.floor((c.notAfter - c.notBefore) * RENEW_AT_FRACTION);
}
