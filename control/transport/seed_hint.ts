/**
 * Says what to do when a peer's certificate comes from a root this node does not trust: most
 * often a node started from seed files made before the cluster rotated its CA. The TLS error
 * alone ("unable to get local issuer certificate") does not say which files to refresh.
 * @module
 */

/** What node:tls says when a certificate does not chain to a trusted root. */
const _UNTRUSTED =
  /unable to get (local )?issuer certificate|self[- ]signed certificate|unable to verify the first certificate|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|certificate signature failure/i;

/** The hint appended to such errors. */
export const SEED_REFRESH_HINT = "the peer's certificate does not chain to any root this node " +
  "trusts (tls.ca_cert_file and the replicated CA); if the cluster rotated its CA since this " +
  "node's seed files were made, run `skein ctl ca export-seed --out DIR` against a running " +
  "node and put DIR/ca.pem and DIR/ca.key in place of tls.ca_cert_file and tls.ca_key_file";

/** `e` with {@linkcode SEED_REFRESH_HINT} added to its message when it is an untrusted-root failure. */
export function explainUntrustedPeer(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  const text = `${e.message} ${typeof code === "string" ? code : ""} ${
    e.cause instanceof Error ? e.cause.message : ""
  }`;
  if (!_UNTRUSTED.test(text) || e.message.includes(SEED_REFRESH_HINT)) return e;
  // The same error, so callers that tell failures apart by class and `kind` still can.
  e.message = `${e.message}: ${SEED_REFRESH_HINT}`;
  return e;
}
