/**
 * The mesh certificate authority (SPEC section 5), as a pure value the control cluster
 * replicates through Raft.
 *
 * ```ts
 * let ca = await createCa({ trustDomain: "skein.local", now: Date.now() });
 * // A proxy authenticated by join token or client certificate for service "payments":
 * const leaf = await signCsr(ca, { csrPem, identity: { kind: "service", service: "payments" }, now });
 * // leaf.certPem carries only URI:spiffe://skein.local/svc/payments, whatever the CSR asked.
 * trustBundle(ca);                    // GET /v1/ca/roots
 * ca = await rotateCa(ca, { now });   // new root signs; old and new both trusted
 * ca = finishRotation(ca);            // after one leaf lifetime: old root dropped
 * ca = revokeIdentity(ca, "spiffe://skein.local/svc/payments", { now });
 * isRevoked(ca, id);                  // for createMtlsServer({ isRevoked })
 * ```
 *
 * Replication: every function returns a new `CaState`; the leader computes it (key generation
 * and signing are not deterministic) and proposes the *result* as a Raft command, followers
 * store it after {@linkcode parseCaState}. `signCsr` does not change the state, so signing needs
 * no Raft write. `CaState` holds private keys (PKCS#8 PEM): use {@linkcode publicCaView} for
 * anything shown or logged.
 * @module
 */
export * from "./ca.ts";
export * from "./state_codec.ts";
export * from "./intermediate.ts";
export type { Identity } from "../../common/tls/mod.ts";
export * from "./seed.ts";
export * from "./rotation.ts";
export * from "./trust_reports.ts";
export * from "./retired.ts";
export * from "./distrust.ts";
