/**
 * What a proxy needs to know about a certificate: validity, SPIFFE id, when to renew.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { parseSpiffeId, type SpiffeId, uriSans } from "../../common/tls/mod.ts";

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

/**
 * When to renew, ms since the epoch: two thirds into the lifetime counted from the issue time.
 * CAs backdate `notBefore` (by a clock-skew allowance) so that peers with slower clocks accept
 * a fresh leaf; that margin is not part of the lifetime the CA granted. Given `receivedAt` (when
 * the certificate arrived from the CA) the lifetime is counted from then, so a 1-minute leaf
 * backdated by 60 s is renewed 40 s after it arrived rather than 20 s; without it (a certificate
 * loaded from disk) `notBefore` is the earliest possible issue time, which renews early, never
 * late.
 */
export function renewAt(cert: CertInfo | string, receivedAt?: number): number {
  const c = typeof cert === "string" ? parseCert(cert) : cert;
  const from = receivedAt === undefined
    ? c.notBefore
    : Math.min(Math.max(c.notBefore, receivedAt), c.notAfter);
  return from + Math.floor((c.notAfter - from) * RENEW_AT_FRACTION);
}

/**
 * Why a certificate the CA just issued is not valid by this machine's clock, naming the skew,
 * or null when it is. The CA backdates `notBefore` by a minute, so a clock behind the CA's by
 * more than that, or ahead by more than the lifetime, is off by at least the amount named.
 */
export function clockSkewProblem(cert: CertInfo, now: number): string | null {
  if (now < cert.notBefore) {
    return `this machine's clock is at least ${
      Math.ceil((cert.notBefore - now) / 1000)
    } s behind the CA's: a certificate it just issued is valid only from ${
      new Date(cert.notBefore).toISOString()
    } (the clock here says ${new Date(now).toISOString()}); set the clock (NTP) and start again`;
  }
  if (now >= cert.notAfter) {
    return `this machine's clock is at least ${
      Math.ceil((now - cert.notAfter) / 1000)
    } s ahead of the CA's: a certificate it just issued expired at ${
      new Date(cert.notAfter).toISOString()
    } (the clock here says ${new Date(now).toISOString()}); set the clock (NTP) and start again`;
  }
  return null;
}
