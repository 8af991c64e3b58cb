/**
 * Offline root, online intermediate: a root whose key never reaches a server certifies an
 * intermediate, and control nodes hold only the intermediate (with the root's certificate as
 * the one trust anchor). A compromised control node then means a new intermediate signed
 * offline, not a new root every member must learn to trust.
 * @module
 */
import * as x509 from "./_x509.ts";
import {
  EC_ALGORITHM,
  exportPrivateKeyPem,
  fromPem,
  generateEcKeyPair,
  isTrustDomain,
  splitPemCerts,
} from "../../common/tls/mod.ts";
import {
  CaError,
  type CaIntermediate,
  type CaState,
  CLOCK_SKEW_ALLOWANCE_MS,
  newRootCertificate,
} from "./ca.ts";
import { retireIntermediate } from "./distrust.ts";

const _DAY_MS = 24 * 3_600_000;
/** Default lifetime of an intermediate: rotated by hand, so long enough to forget, not forever. */
export const INTERMEDIATE_VALIDITY_MS_DEFAULT = 365 * _DAY_MS;

/** A certificate and its private key, both PEM. */
export interface CertAndKey {
  /** The certificate. */
  readonly certPem: string;
  /** PKCS#8 PEM private key. Secret: never log it. */
  readonly keyPem: string;
}

/** What `skein ca create --offline-root` makes: the root (to keep offline) and the CA state. */
export interface OfflineRootCa {
  /** The root certificate and its key: this key must leave the server. */
  readonly root: CertAndKey;
  /** The intermediate the control nodes hold. */
  readonly intermediate: CertAndKey;
  /** The CA as control nodes hold it: the root without its key, the intermediate with its. */
  readonly state: CaState;
}

/** Creates a root meant to stay offline and a first intermediate signed by it. */
export async function createOfflineRootCa(opts: {
  trustDomain: string;
  now: number;
  name?: string;
  rootValidityMs?: number;
  intermediateValidityMs?: number;
}): Promise<OfflineRootCa> {
  if (!isTrustDomain(opts.trustDomain)) {
    throw new CaError("invalid_state", `invalid trust domain ${JSON.stringify(opts.trustDomain)}`);
  }
  const name = opts.name ?? "skein";
  const root = await newRootCertificate({
    trustDomain: opts.trustDomain,
    name,
    generation: 1,
    now: opts.now,
    pathLength: 1,
    ...(opts.rootValidityMs !== undefined ? { validityMs: opts.rootValidityMs } : {}),
  });
  const intermediate = await signIntermediate({
    rootCertPem: root.certPem,
    rootKeyPem: root.keyPem,
    now: opts.now,
    ...(opts.intermediateValidityMs !== undefined
      ? { validityMs: opts.intermediateValidityMs }
      : {}),
  });
  const { keyPem: _offline, ...rootPublic } = root;
  const checked = await checkIntermediate({
    certPem: intermediate.certPem,
    keyPem: intermediate.keyPem,
    rootCertPem: root.certPem,
    trustDomain: opts.trustDomain,
    now: opts.now,
  });
  return {
    root: { certPem: root.certPem, keyPem: root.keyPem },
    intermediate,
    state: {
      version: 1,
      trustDomain: opts.trustDomain,
      name,
      activeRootId: root.id,
      roots: [{ ...rootPublic, intermediate: checked }],
      revoked: [],
    },
  };
}

/**
 * Signs a new intermediate with a root's key (run where the root key is kept, never on a
 * control node). The trust domain is the root's; the intermediate never outlives the root.
 */
export async function signIntermediate(opts: {
  rootCertPem: string;
  rootKeyPem: string;
  now: number;
  validityMs?: number;
}): Promise<CertAndKey> {
  const root = _parseOne(opts.rootCertPem, "root certificate");
  const td = _trustDomainOf(root);
  if (td === null) {
    throw new CaError(
      "invalid_intermediate",
      "root certificate carries no spiffe://<trust domain>",
    );
  }
  const rootKey = await _importKey(opts.rootKeyPem, "root key");
  if (!(await _keyMatches(rootKey, root))) {
    throw new CaError("invalid_intermediate", "root key does not match the root certificate");
  }
  const bc = root.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca || bc.pathLength === 0) {
    throw new CaError(
      "invalid_intermediate",
      "root has pathlen:0, so it cannot certify an intermediate (a root made for a single-root " +
        "CA): make a new CA with `skein ca create --offline-root DIR --out DIR`",
    );
  }
  const rootNotAfter = root.notAfter.getTime();
  const notAfter = Math.min(
    opts.now + (opts.validityMs ?? INTERMEDIATE_VALIDITY_MS_DEFAULT),
    rootNotAfter,
  );
  if (notAfter <= opts.now) throw new CaError("invalid_intermediate", "root has expired");
  const keys = await generateEcKeyPair();
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const label = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: _randomSerial(),
    // A distinct subject per intermediate, so old and new never look alike to a path builder.
    subject: `CN=skein intermediate ${label}, O=skein, OU=${td}`,
    issuer: root.subject,
    notBefore: new Date(Math.max(opts.now - CLOCK_SKEW_ALLOWANCE_MS, root.notBefore.getTime())),
    notAfter: new Date(notAfter),
    signingAlgorithm: EC_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: rootKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      ski,
      await x509.AuthorityKeyIdentifierExtension.create(root),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${td}` }], false),
    ],
  });
  return {
    certPem: cert.toString("pem") + "\n",
    keyPem: await exportPrivateKeyPem(keys.privateKey),
  };
}

/**
 * Checks an intermediate before a control node uses it: one CA certificate allowed to sign
 * certificates, ECDSA P-256, for `trustDomain`, signed by `rootCertPem`, valid at `now`, and
 * `keyPem` its key. Throws `CaError` (`invalid_intermediate`) with one line naming the failed
 * check; returns the intermediate as the CA state holds it.
 */
export async function checkIntermediate(opts: {
  certPem: string;
  keyPem: string;
  rootCertPem: string;
  trustDomain: string;
  now: number;
}): Promise<CaIntermediate> {
  const fail = (msg: string): never => {
    throw new CaError("invalid_intermediate", `intermediate ${msg}`);
  };
  const blocks = splitPemCerts(opts.certPem);
  if (blocks.length !== 1) fail(`file holds ${blocks.length} certificates, expected one`);
  const cert = _parseOne(blocks[0]!, "intermediate certificate");
  const root = _parseOne(opts.rootCertPem, "root certificate");
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) fail("is not a CA certificate (basicConstraints CA:TRUE missing)");
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    fail("key usage does not allow keyCertSign");
  }
  const alg = cert.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== "ECDSA" || alg.namedCurve !== "P-256") {
    fail(`key is ${alg.name} ${alg.namedCurve ?? ""}; expected ECDSA P-256`.trim());
  }
  const rootSki = root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? "?";
  if (cert.subject === cert.issuer) {
    // The root itself would put the root key on the servers, which is what this avoids.
    fail("is a self-signed root, not an intermediate the root signed");
  }
  if (cert.issuer !== root.subject || !(await _signedBy(cert, root))) {
    fail(`is not signed by the configured root ${rootSki.toLowerCase()} (${root.subject})`);
  }
  const rootBc = root.getExtension(x509.BasicConstraintsExtension);
  if (rootBc?.pathLength === 0) {
    fail("is signed by a root with pathlen:0, which no verifier accepts above an intermediate");
  }
  const notBefore = cert.notBefore.getTime();
  const notAfter = cert.notAfter.getTime();
  if (opts.now >= notAfter) fail(`expired at ${cert.notAfter.toISOString()}`);
  if (opts.now < notBefore) fail(`is not valid before ${cert.notBefore.toISOString()}`);
  const td = _trustDomainOf(cert);
  if (td !== opts.trustDomain) {
    fail(`is for ${td === null ? "no trust domain" : td}, expected spiffe://${opts.trustDomain}`);
  }
  const key = await _importKey(opts.keyPem, "intermediate key");
  if (!(await _keyMatches(key, cert))) fail("key does not match the intermediate certificate");
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension) ??
    await x509.SubjectKeyIdentifierExtension.create(await cert.publicKey.export());
  return {
    id: ski.keyId.toLowerCase(),
    certPem: blocks[0]!,
    keyPem: await exportPrivateKeyPem(key),
    notBefore,
    notAfter,
  };
}

/**
 * Installs a new intermediate on the active root (`skein ctl ca rotate --intermediate-cert`):
 * after checking it chains to that root, new leaves come from it; leaves from the old one
 * still chain to the same root and stay valid until they renew. Refused during a root
 * rotation and on a root that signs by itself.
 */
export async function installIntermediate(
  state: CaState,
  opts: { certPem: string; keyPem: string; now: number },
): Promise<CaState> {
  if (state.roots.length > 1 || state.rotation !== undefined) {
    throw new CaError(
      "rotation_in_progress",
      "a root rotation is in progress; finish it before replacing the intermediate",
    );
  }
  const root = state.roots.find((r) => r.id === state.activeRootId)!;
  if (root.intermediate === undefined) {
    throw new CaError(
      "invalid_intermediate",
      "this CA's root signs leaves itself (no intermediate); an intermediate needs a CA made " +
        "with `skein ca create --offline-root DIR --out DIR`",
    );
  }
  const next = await checkIntermediate({
    certPem: opts.certPem,
    keyPem: opts.keyPem,
    rootCertPem: root.certPem,
    trustDomain: state.trustDomain,
    now: opts.now,
  });
  if (next.id === root.intermediate.id) return state;
  // The old one is remembered (certificate only) so that it can be distrusted later.
  const retired = retireIntermediate(state, root.intermediate, opts.now);
  return { ...retired, roots: [{ ...root, intermediate: next }] };
}

/** The trust domain a CA certificate names in its `spiffe://<td>` URI SAN, or null. */
export function certTrustDomain(certPem: string): string | null {
  try {
    return _trustDomainOf(_parseOne(certPem, "certificate"));
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------

function _parseOne(pem: string, what: string): x509.X509Certificate {
  const blocks = splitPemCerts(pem);
  if (blocks.length !== 1) {
    throw new CaError(
      "invalid_intermediate",
      `${what}: expected one certificate, found ${blocks.length}`,
    );
  }
  try {
    return new x509.X509Certificate(blocks[0]!);
  } catch (e) {
    throw new CaError("invalid_intermediate", `${what} does not parse: ${(e as Error).message}`);
  }
}

function _trustDomainOf(cert: x509.X509Certificate): string | null {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uri = san?.names.toJSON().find((n) => n.type === "url" && n.value.startsWith("spiffe://"));
  if (uri === undefined) return null;
  const td = uri.value.slice("spiffe://".length);
  return isTrustDomain(td) ? td : null;
}

async function _signedBy(cert: x509.X509Certificate, issuer: x509.X509Certificate) {
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

async function _importKey(pem: string, what: string): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey(
      "pkcs8",
      fromPem(pem, "PRIVATE KEY"),
      EC_ALGORITHM,
      true,
      ["sign"],
    );
  } catch (e) {
    throw new CaError(
      "invalid_intermediate",
      `${what} is not a PKCS#8 ECDSA P-256 private key: ${(e as Error).message}`,
    );
  }
}

/** Proves `key` belongs to `cert` by a signature the certificate's key verifies. */
async function _keyMatches(key: CryptoKey, cert: x509.X509Certificate): Promise<boolean> {
  const probe = crypto.getRandomValues(new Uint8Array(32));
  const sig = await crypto.subtle.sign(EC_ALGORITHM, key, probe);
  const pub = await cert.publicKey.export(EC_ALGORITHM, ["verify"]);
  return await crypto.subtle.verify(EC_ALGORITHM, pub, sig, probe);
}

/** 128 random bits, positive and without a leading zero byte (RFC 5280 serials). */
function _randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x40;
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
