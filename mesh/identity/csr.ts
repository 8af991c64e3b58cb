/**
 * The proxy's key and certificate signing request. The private key is generated here, on the
 * proxy's machine, and only the CSR (public key + proof of possession) is sent to the CA.
 * @module
 */
import * as x509 from "./_x509.ts";
import {
  EC_ALGORITHM,
  exportPrivateKeyPem,
  generateEcKeyPair,
  spiffeIdFor,
} from "../../common/tls.ts";

/** A freshly generated key with the CSR that asks for `service`'s identity. */
export interface KeyAndCsr {
  /** PKCS#8 PEM private key. Secret: never log it, never send it. */
  readonly keyPem: string;
  /** PKCS#10 CSR, PEM. */
  readonly csrPem: string;
}

/**
 * Generates an ECDSA P-256 key and a CSR for `service`. The CSR names the SPIFFE id it hopes
 * for, but the CA ignores that and signs the identity it authenticated.
 */
export async function createKeyAndCsr(
  opts: { service: string; trustDomain: string },
): Promise<KeyAndCsr> {
  const uri = spiffeIdFor(opts.trustDomain, { kind: "service", service: opts.service });
  const keys = await generateEcKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${opts.service}`,
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: uri }])],
  });
  return { keyPem: await exportPrivateKeyPem(keys.privateKey), csrPem: csr.toString("pem") };
}
