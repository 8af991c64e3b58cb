/**
 * TLS for the control plane: the node's own certificate ({@linkcode ControlIdentity}), issued
 * locally from the CA every control node holds, renewed at 2/3 of its life and re-issued when the
 * CA rotates.
 *
 * ```ts
 * const ca = await loadOrCreateSeedCa({ certFile, keyFile, trustDomain, create: true, now });
 * const identity = await ControlIdentity.create({
 *   node: "cp-1", trustDomain, ca, sans: { ip: ["10.0.0.1", "127.0.0.1"], dns: ["localhost"] },
 * });
 * identity.material();           // { certPem, keyPem, caPem } for the next connection
 * identity.onChange((m) => server.updateMaterial(m));
 * await identity.updateCa(next);  // after a rotation or revocation is applied
 * ```
 * @module
 */
export * from "./control_identity.ts";
