/**
 * Which trusted root a certificate chain leads to: a leaf signed by a root directly (a
 * single-root CA), or by an intermediate CA certificate that a root signed (an offline root).
 * Used where a verifier has only parsed certificates to go on (the native client's second
 * check, trust reports), with `node:crypto` only, so proxy workers need no x509 library.
 * @module
 */
import { X509Certificate } from "node:crypto";
import { splitPemCerts } from "./pem.ts";

/** Whether `issuer` names and signed `cert` (false for anything that does not parse). */
export function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * The root among `roots` that `leaf` leads to, directly or through one of `intermediates` (a
 * CA certificate valid at `now` that the root signed), or null. The roots are the only trust
 * anchors: an intermediate that no root signed proves nothing.
 */
export function anchorOf(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: number = Date.now(),
): X509Certificate | null {
  for (const r of roots) if (issuedBy(leaf, r)) return r;
  for (const i of intermediates) {
    if (!i.ca || !_validAt(i, now) || !issuedBy(leaf, i)) continue;
    for (const r of roots) if (issuedBy(i, r)) return r;
  }
  return null;
}

/**
 * The root a PEM chain (leaf first, then the intermediates it carries) leads to, or null when
 * it does not parse or leads to none of `roots`.
 */
export function chainAnchor(
  chainPem: string,
  roots: readonly X509Certificate[],
  now: number = Date.now(),
): X509Certificate | null {
  let certs: X509Certificate[];
  try {
    certs = splitPemCerts(chainPem).map((p) => new X509Certificate(p));
  } catch {
    return null;
  }
  const [leaf, ...rest] = certs;
  return leaf === undefined ? null : anchorOf(leaf, rest, roots, now);
}

/** The CA certificates a PEM chain carries after its leaf (its intermediates), parsed. */
export function chainIntermediates(chainPem: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const p of splitPemCerts(chainPem).slice(1)) {
    try {
      const c = new X509Certificate(p);
      if (c.ca) out.push(c);
    } catch {
      // Not a certificate a peer could use either.
    }
  }
  return out;
}

function _validAt(c: X509Certificate, now: number): boolean {
  return Date.parse(c.validFrom) <= now && now < Date.parse(c.validTo);
}
