/**
 * Says what to do when a peer's certificate fails for a reason fixed outside skein: a root this
 * node does not trust (most often a node started from seed files made before the cluster
 * rotated its CA: the TLS error alone does not say which files to refresh), or clocks apart.
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

/** What node:tls says when a certificate is outside its validity by this node's clock. */
const _NOT_YET_VALID = /certificate is not yet valid|CERT_NOT_YET_VALID/i;
const _EXPIRED = /certificate has expired|CERT_HAS_EXPIRED/i;

/** The hint appended when a peer's fresh certificate is not valid yet by this node's clock. */
export const CLOCK_BEHIND_HINT = "the peer's certificate is not valid yet by this node's clock, " +
  "though certificates are valid from a minute before they are issued: this node's clock is " +
  "behind the peer's by more than that; set the clock (NTP)";
/** The hint appended when a peer's certificate has expired by this node's clock. */
export const CLOCK_OR_EXPIRY_HINT = "the peer's certificate has expired by this node's clock: " +
  "either this node's clock is ahead of the peer's (set the clock, NTP) or the peer cannot " +
  "renew (see its log)";

/** What the dialer knows that tells an operator which of the two nodes has outdated files. */
export interface UntrustedPeerContext {
  /** The node dialled, when known. */
  readonly peer?: string;
  /** Ids of the roots this node trusts. */
  readonly trustedRootIds?: readonly string[];
}

/**
 * `e` with a hint added to its message when it is a failure an operator fixes outside skein:
 * an untrusted root ({@linkcode SEED_REFRESH_HINT}, followed by the peer and the roots this
 * node trusts, since either side may be the outdated one) or a clock
 * ({@linkcode CLOCK_BEHIND_HINT}, {@linkcode CLOCK_OR_EXPIRY_HINT}). Other errors pass
 * through unchanged.
 */
export function explainUntrustedPeer(e: unknown, ctx: UntrustedPeerContext = {}): unknown {
  if (!(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  const text = `${e.message} ${typeof code === "string" ? code : ""} ${
    e.cause instanceof Error ? e.cause.message : ""
  }`;
  const hint = _UNTRUSTED.test(text)
    ? SEED_REFRESH_HINT
    : _NOT_YET_VALID.test(text)
    ? CLOCK_BEHIND_HINT
    : _EXPIRED.test(text)
    ? CLOCK_OR_EXPIRY_HINT
    : null;
  if (hint === null || e.message.includes(hint)) return e;
  // The same error, so callers that tell failures apart by class and `kind` still can.
  e.message = `${e.message}: ${hint}${hint === SEED_REFRESH_HINT ? _whichSide(ctx) : ""}`;
  return e;
}

/** Names what the operator compares to find the node with outdated files. */
function _whichSide(ctx: UntrustedPeerContext): string {
  const roots = ctx.trustedRootIds ?? [];
  if (roots.length === 0) return "";
  const peer = ctx.peer === undefined ? "the peer" : `peer ${ctx.peer}`;
  return ` (this node trusts root ${roots.join(", ")}; \`skein ctl ca roots\` lists the ` +
    `cluster's: if they match, the files to refresh are ${peer}'s)`;
}
