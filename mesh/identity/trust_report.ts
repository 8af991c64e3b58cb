/**
 * What a proxy tells the control plane it holds, with each heartbeat: the fingerprints of the
 * roots it trusts and of the root its certificate comes from. A CA rotation waits on these
 * (every proxy trusts the new root before it signs; every leaf comes from it before the old
 * root is dropped).
 * @module
 */
import { X509Certificate } from "node:crypto";
import {
  chainAnchor,
  chainIntermediates,
  issuedBy,
  splitPemCerts,
  type TlsMaterial,
} from "../../common/tls/mod.ts";

/** The `trust` part of a heartbeat body. */
export interface TrustReportBody {
  /** SHA-256 fingerprints of the trusted roots (`AA:BB:…`). */
  roots: string[];
  /** Fingerprint of the root that signed the certificate, or null when none of them did. */
  leaf_root: string | null;
  /**
   * Fingerprint of the intermediate that signed the certificate, or null when a root signed it
   * directly: distrusting a rotated-out intermediate waits until no member's leaf comes from it.
   */
  leaf_issuer: string | null;
}

/** Most roots reported (the API takes at most 8). */
const _MAX_ROOTS = 8;

let _last: { cert: string; ca: string; report: TrustReportBody } | null = null;

/** The report for `m`; computed once per certificate and bundle. */
export function trustReport(m: TlsMaterial): TrustReportBody {
  if (_last !== null && _last.cert === m.certPem && _last.ca === m.caPem) return _last.report;
  const roots = splitPemCerts(m.caPem).slice(0, _MAX_ROOTS).map((p) => new X509Certificate(p));
  const report = {
    roots: roots.map((r) => r.fingerprint256),
    leaf_root: issuingRoot(m.certPem, roots)?.fingerprint256 ?? null,
    leaf_issuer: leafIntermediate(m.certPem)?.fingerprint256 ?? null,
  };
  _last = { cert: m.certPem, ca: m.caPem, report };
  return report;
}

/**
 * The root among `roots` that `certPem` (a leaf, followed by its intermediate when an
 * intermediate signed it) leads to, or null.
 */
export function issuingRoot(
  certPem: string,
  roots: readonly X509Certificate[],
): X509Certificate | null {
  return chainAnchor(certPem, roots);
}

/** The intermediate among those `certPem` carries after its leaf that signed the leaf, or null. */
export function leafIntermediate(certPem: string): X509Certificate | null {
  const first = splitPemCerts(certPem)[0];
  if (first === undefined) return null;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(first);
  } catch {
    return null;
  }
  return chainIntermediates(certPem).find((i) => issuedBy(leaf, i)) ?? null;
}
