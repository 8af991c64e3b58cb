/**
 * The proxy's key and certificate signing request. The private key is generated here, on the
 * proxy's machine, and only the CSR (public key + proof of possession) is sent to the CA.
 *
 * The PKCS#10 request (RFC 2986) is written with the DER helpers of ./der.ts and signed with
 * WebCrypto: a proxy needs no X.509 library in its isolate for it.
 * @module
 */
import {
  EC_ALGORITHM,
  exportPrivateKeyPem,
  generateEcKeyPair,
  identityOfLabel,
  spiffeIdFor,
  toPem,
} from "../../common/tls/mod.ts";
import {
  bitString,
  octetString,
  oid,
  sequence,
  set,
  tlv,
  unsignedInteger,
  utf8String,
} from "./der.ts";

const OID_COMMON_NAME = "2.5.4.3";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/** A freshly generated key with the CSR that asks for `service`'s identity. */
export interface KeyAndCsr {
  /** PKCS#8 PEM private key. Secret: never log it, never send it. */
  readonly keyPem: string;
  /** PKCS#10 CSR, PEM. */
  readonly csrPem: string;
}

/** WebCrypto's ECDSA signature (r || s, fixed width) as the DER Ecdsa-Sig-Value X.509 wants. */
export function ecdsaSignatureToDer(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  const half = raw.length / 2;
  return sequence(unsignedInteger(raw.subarray(0, half)), unsignedInteger(raw.subarray(half)));
}

/** The DER CertificationRequestInfo for subject `CN=<cn>`, `spki` and one SAN URI. */
export function certificationRequestInfo(
  cn: string,
  spki: Uint8Array,
  uri: string,
): Uint8Array<ArrayBuffer> {
  const subject = sequence(set(sequence(oid(OID_COMMON_NAME), utf8String(cn))));
  // GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String.
  const san = sequence(tlv(0x86, new TextEncoder().encode(uri)));
  const extensions = sequence(sequence(oid(OID_SUBJECT_ALT_NAME), octetString(san)));
  const attributes = tlv(0xa0, sequence(oid(OID_EXTENSION_REQUEST), set(extensions)));
  return sequence(unsignedInteger(Uint8Array.of(0)), subject, spki, attributes);
}

/**
 * Generates an ECDSA P-256 key and a CSR for `service`. The CSR names the SPIFFE id it hopes
 * for, but the CA ignores that and signs the identity it authenticated.
 */
export async function createKeyAndCsr(
  opts: { service: string; trustDomain: string },
): Promise<KeyAndCsr> {
  // A gateway proxy's "service" is its label `gateway/<name>`.
  const id = identityOfLabel(opts.service);
  if (id === null) throw new RangeError(`invalid identity ${JSON.stringify(opts.service)}`);
  const uri = spiffeIdFor(opts.trustDomain, id);
  const keys = await generateEcKeyPair();
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const info = certificationRequestInfo(opts.service, spki, uri);
  const sig = new Uint8Array(await crypto.subtle.sign(EC_ALGORITHM, keys.privateKey, info));
  const csr = sequence(
    info,
    sequence(oid(OID_ECDSA_WITH_SHA256)),
    bitString(ecdsaSignatureToDer(sig)),
  );
  return {
    keyPem: await exportPrivateKeyPem(keys.privateKey),
    csrPem: toPem(csr, "CERTIFICATE REQUEST"),
  };
}
