/**
 * The proxy's own identity: its key (generated here, never sent), the CSR, the certificate and
 * trust bundle on disk, and the renewal loop.
 *
 * ```ts
 * const renewer = new CertRenewer({
 *   service: "payments", trustDomain: "skein.local",
 *   initial: await loadIdentity(dataDir),
 *   persist: (m) => saveIdentity(dataDir, m),
 *   sign: (csrPem) => postCsr(csrPem),   // join token first, then the current certificate
 *   logger,
 * });
 * const material = await renewer.start();
 * const inbound = createMtlsServer({ cert: material.certPem, key: material.keyPem, ca: material.caPem, ... });
 * renewer.onChange((m) => inbound.updateMaterial(m));  // no connection dropped
 * // On a CA rotation (GET /v1/ca/roots changed): renewer.updateTrustBundle(newBundlePem)
 * ```
 * @module
 */
export * from "./csr.ts";
export * from "./cert_info.ts";
export * from "./store.ts";
export * from "./renewer.ts";
export * from "./enroll.ts";
export * from "../../common/tls/control_https.ts";
export * from "./trust_report.ts";
export * from "./activation_renewal.ts";
export * from "./gateway.ts";
