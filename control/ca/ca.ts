/**
 * The mesh certificate authority as a pure, JSON-serializable value ({@linkcode CaState}) and
 * the functions over it. The control cluster replicates the state through Raft and any node
 * holding it can sign; nothing here does I/O or keeps hidden state.
 * @module
 */
import * as x509 from "./_x509.ts";
import {
  EC_ALGORITHM,
  exportPrivateKeyPem,
  generateEcKeyPair,
  type Identity,
  identityName,
  importPrivateKeyPem,
  isTrustDomain,
  parseSpiffeId,
  spiffeIdFor,
} from "../../common/tls/mod.ts";
import type { RetiredIntermediate } from "./retired.ts";

const _HOUR_MS = 3_600_000;
const _DAY_MS = 24 * _HOUR_MS;

/** Default lifetime of a leaf certificate (SPEC section 5). */
export const LEAF_TTL_MS_DEFAULT = 24 * _HOUR_MS;
/** Shortest leaf lifetime `signCsr` accepts. */
export const LEAF_TTL_MS_MIN = 60_000;
/** Longest leaf lifetime `signCsr` accepts: short-lived certificates are the revocation story. */
export const LEAF_TTL_MS_MAX = 30 * _DAY_MS;
/** Default lifetime of a root; rotation, not expiry, is the normal way a root leaves. */
export const ROOT_VALIDITY_MS_DEFAULT = 10 * 365 * _DAY_MS;
/** Leaves are valid from this long before `now`, so a peer whose clock is behind accepts them. */
export const CLOCK_SKEW_ALLOWANCE_MS = 60_000;
/** Most roots trusted at once: the current one and the one being rotated out. */
export const MAX_TRUSTED_ROOTS = 2;
/** Largest CSR accepted, in bytes of PEM; an ECDSA CSR is well under 1 KiB. */
export const MAX_CSR_PEM_BYTES = 8 * 1024;
/** Most revoked identities kept; beyond it `revokeIdentity` refuses rather than grow forever. */
export const MAX_REVOKED_IDENTITIES = 10_000;
/** Most extra DNS/IP names on one leaf. */
export const MAX_EXTRA_SANS = 16;
/** Longest DNS name (RFC 1035), so a derived service name that would not fit is left out. */
const _DNS_NAME_MAX_CHARS = 253;
/** One lowercase DNS label: what a service name must be made of to get a DNS SAN. */
const _DNS_LABELS = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Why a CA operation was refused. */
export type CaErrorCode =
  | "invalid_csr"
  | "bad_csr_signature"
  | "unsupported_key"
  | "invalid_identity"
  | "revoked"
  | "invalid_ttl"
  | "rotation_in_progress"
  | "too_many_revocations"
  | "invalid_state"
  | "root_offline"
  | "invalid_intermediate"
  | "intermediate_active"
  | "unknown_intermediate"
  | "intermediate_in_use";

/** A refused CA operation; `code` is stable, `message` says what and why. */
export class CaError extends Error {
  /** Stable reason code. */
  readonly code: CaErrorCode;
  /** Creates the error. */
  constructor(code: CaErrorCode, message: string) {
    super(message);
    this.name = "CaError";
    this.code = code;
  }
}

/** One root certificate with its private key. */
export interface CaRoot {
  /** Hex Subject Key Identifier: stable handle for the root. */
  readonly id: string;
  /** 1 for the first root, +1 per rotation; part of the subject so old and new never clash. */
  readonly generation: number;
  /** Self-signed root certificate. */
  readonly certPem: string;
  /**
   * PKCS#8 PEM private key. Secret: never log it. Absent when the root is kept offline: then
   * `intermediate` signs and only an operator holding the root key can replace it.
   */
  readonly keyPem?: string;
  /** Validity start, ms since the epoch. */
  readonly notBefore: number;
  /** Validity end, ms since the epoch. */
  readonly notAfter: number;
  /** The intermediate this root certified, which signs leaves in its place (offline root). */
  readonly intermediate?: CaIntermediate;
}

/** An intermediate CA signed by a root (`control/ca/intermediate.ts`); it signs the leaves. */
export interface CaIntermediate {
  /** Hex Subject Key Identifier. */
  readonly id: string;
  /** The intermediate certificate, signed by its root. */
  readonly certPem: string;
  /** PKCS#8 PEM private key. Secret: never log it. */
  readonly keyPem: string;
  /** Validity start, ms since the epoch. */
  readonly notBefore: number;
  /** Validity end, ms since the epoch. */
  readonly notAfter: number;
}

/** An identity that may no longer connect or obtain certificates. */
export interface RevokedIdentity {
  /** The SPIFFE id revoked. */
  readonly spiffeId: string;
  /** When, ms since the epoch. */
  readonly revokedAt: number;
  /** Operator's note. */
  readonly reason: string;
}

/** The whole CA: JSON-serializable so it can be a Raft command and a snapshot field. */
export interface CaState {
  /** Format version of this value. */
  readonly version: 1;
  /** Trust domain of every SPIFFE id issued. */
  readonly trustDomain: string;
  /** Human name written in root subjects. */
  readonly name: string;
  /** The root that signs new leaves. */
  readonly activeRootId: string;
  /** Trusted roots, active first; two during a rotation. */
  readonly roots: readonly CaRoot[];
  /** Revoked identities, sorted by SPIFFE id. */
  readonly revoked: readonly RevokedIdentity[];
  /**
   * The rotation the leader is carrying through, if any (`control/ca/rotation.ts`). Absent
   * when no rotation runs, or when an operator drives one by hand (`activate`, `finish`).
   */
  readonly rotation?: RotationRecord;
  /**
   * Intermediates rotated out (certificate only, no key), kept so an operator can distrust
   * one (`control/ca/distrust.ts`); expired ones are dropped. Absent when there are none.
   */
  readonly retiredIntermediates?: readonly RetiredIntermediate[];
}

/** Phases of a rotation the control plane drives: trust the new root, then sign with it. */
export type RotationPhase = "trust" | "activate";

/** What the leader needs to carry a rotation through; replicated inside {@linkcode CaState}. */
export interface RotationRecord {
  /** `trust`: the new root is trusted, not signing; `activate`: it signs, the old one stays. */
  readonly phase: RotationPhase;
  /** The root being rotated in. */
  readonly newRootId: string;
  /** The root being rotated out. */
  readonly oldRootId: string;
  /** Who started it. */
  readonly trigger: "operator" | "policy";
  /** When it started, ms since the epoch (the leader's clock). */
  readonly startedAt: number;
  /** When the current phase started. */
  readonly phaseSince: number;
  /** Set when the rotation stopped waiting for stragglers by policy: why, for the alert. */
  readonly paused: string | null;
}

/** A signed leaf as returned to the requester. */
export interface SignedCertificate {
  /** The leaf certificate. */
  readonly certPem: string;
  /** The trust bundle at signing time (all trusted roots, concatenated). */
  readonly caPem: string;
  /** The SPIFFE id in the URI SAN. */
  readonly spiffeId: string;
  /** Hex serial number. */
  readonly serial: string;
  /** Validity start, ms since the epoch. */
  readonly notBefore: number;
  /** Validity end, ms since the epoch. */
  readonly notAfter: number;
}

/** Options of {@linkcode createCa}. */
export interface CreateCaOptions {
  /** Trust domain, e.g. "skein.local". */
  trustDomain: string;
  /** Name in the root subject. @default "skein" */
  name?: string;
  /** Current time, ms since the epoch. */
  now: number;
  /** Root lifetime. @default ROOT_VALIDITY_MS_DEFAULT */
  validityMs?: number;
}

/** What a CA name may be: it is written into root subjects. */
export const CA_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

/** A CA whose roots all hold their keys (what {@linkcode createCa} makes). */
export type OnlineRootCaState = CaState & {
  readonly roots: readonly (CaRoot & { readonly keyPem: string })[];
};

/** Creates a new CA with one freshly generated root, which signs leaves itself. */
export async function createCa(opts: CreateCaOptions): Promise<OnlineRootCaState> {
  if (!isTrustDomain(opts.trustDomain)) {
    throw new CaError("invalid_state", `invalid trust domain ${JSON.stringify(opts.trustDomain)}`);
  }
  const name = opts.name ?? "skein";
  if (!CA_NAME_PATTERN.test(name)) {
    throw new CaError("invalid_state", `invalid CA name ${JSON.stringify(name)}`);
  }
  const root = await _newRoot(opts.trustDomain, name, 1, opts.now, opts.validityMs);
  return {
    version: 1,
    trustDomain: opts.trustDomain,
    name,
    activeRootId: root.id,
    roots: [root],
    revoked: [],
  };
}

/**
 * Starts a rotation: generates a new root, trusted from now on beside the old one. With
 * `activate` (the default) it also signs every leaf from now on. The safe order for a live mesh
 * is `activate: false` first, wait until every proxy has fetched the new bundle, then
 * {@linkcode activateRoot}: otherwise a peer that still trusts only the old root refuses a
 * freshly renewed leaf. Refused while a rotation is in progress ({@linkcode MAX_TRUSTED_ROOTS}).
 */
export async function rotateCa(
  state: CaState,
  opts: { now: number; validityMs?: number; activate?: boolean },
): Promise<CaState> {
  if (state.roots.length >= MAX_TRUSTED_ROOTS) {
    throw new CaError(
      "rotation_in_progress",
      `a rotation is in progress (${state.roots.length} roots trusted); finish it first`,
    );
  }
  if (_activeRoot(state).keyPem === undefined) throw rootOfflineError();
  const generation = Math.max(...state.roots.map((r) => r.generation)) + 1;
  const root = await _newRoot(state.trustDomain, state.name, generation, opts.now, opts.validityMs);
  if (opts.activate === false) return { ...state, roots: [...state.roots, root] };
  return { ...state, activeRootId: root.id, roots: [root, ...state.roots] };
}

/** Makes the trusted root `rootId` the one that signs new leaves (second step of a rotation). */
export function activateRoot(state: CaState, rootId: string, now?: number): CaState {
  const root = state.roots.find((r) => r.id === rootId);
  if (!root) throw new CaError("invalid_state", `root ${rootId} is not trusted`);
  const { rotation, ...rest } = state;
  const next: CaState = {
    ...rest,
    activeRootId: rootId,
    roots: [root, ...state.roots.filter((r) => r !== root)],
  };
  // A driven rotation moves on to its second phase; activating anything else ends the drive.
  if (rotation === undefined || rotation.newRootId !== rootId) return next;
  return {
    ...next,
    rotation: {
      ...rotation,
      phase: "activate",
      phaseSince: now ?? rotation.phaseSince,
      paused: null,
    },
  };
}

/**
 * Ends a rotation: only the active root stays trusted. Call it once every leaf signed by the
 * old root has been renewed (at most one leaf lifetime after {@linkcode rotateCa}).
 */
export function finishRotation(state: CaState): CaState {
  const active = _activeRoot(state);
  const { rotation: _done, ...rest } = state;
  if (state.roots.length === 1 && _done === undefined) return state;
  return { ...rest, roots: [active] };
}

/** The trusted root certificates (PEM), active first: what `GET /v1/ca/roots` serves. */
export function trustBundle(state: CaState): string[] {
  return state.roots.map((r) => r.certPem);
}

/** The trust bundle as one PEM string, the shape `node:tls` takes for `ca`. */
export function trustBundlePem(state: CaState): string {
  return trustBundle(state).join("");
}

/** Options of {@linkcode signCsr}. */
export interface SignCsrOptions {
  /** The CSR, PEM. Its subject and SANs are ignored: the identity below is what gets signed. */
  csrPem: string;
  /** The identity the caller authenticated (join token's service, client certificate). */
  identity: Identity;
  /** Current time, ms since the epoch. */
  now: number;
  /** Leaf lifetime. @default LEAF_TTL_MS_DEFAULT */
  ttlMs?: number;
  /**
   * DNS names and IP addresses to add as SANs, for control nodes whose HTTPS API operators
   * reach with ordinary clients. Never derived from the CSR.
   */
  extraSans?: { dns?: readonly string[]; ip?: readonly string[] };
}

/**
 * Signs a CSR into a leaf certificate for `identity`, after checking the CSR's signature (proof
 * that the requester holds the key) and key type. Whatever subject and SANs the CSR asks for
 * are ignored; the leaf carries exactly the authenticated identity's SPIFFE id (its one URI
 * SAN), plus for services the derived {@linkcode serviceDnsName}.
 */
export async function signCsr(state: CaState, opts: SignCsrOptions): Promise<SignedCertificate> {
  const spiffeId = _identityUri(state, opts.identity);
  if (isRevoked(state, spiffeId)) {
    throw new CaError("revoked", `identity ${spiffeId} is revoked`);
  }
  const ttl = opts.ttlMs ?? LEAF_TTL_MS_DEFAULT;
  if (!Number.isFinite(ttl) || ttl < LEAF_TTL_MS_MIN || ttl > LEAF_TTL_MS_MAX) {
    throw new CaError(
      "invalid_ttl",
      `ttl ${ttl}ms is outside [${LEAF_TTL_MS_MIN}, ${LEAF_TTL_MS_MAX}]`,
    );
  }
  const publicKey = await _verifiedCsrKey(opts.csrPem);
  const signer = activeSigner(state);
  const rootCert = new x509.X509Certificate(signer.certPem);
  const signingKey = await importPrivateKeyPem(signer.keyPem);
  const notBefore = Math.max(opts.now - CLOCK_SKEW_ALLOWANCE_MS, signer.notBefore);
  // A leaf never outlives its issuer: a verifier would reject the chain anyway.
  const notAfter = Math.min(opts.now + ttl, signer.notAfter);
  if (notAfter <= opts.now) {
    throw new CaError("invalid_state", `active ${signer.kind} ${signer.id} has expired`);
  }
  const sans: x509.JsonGeneralNames = [{ type: "url", value: spiffeId }];
  const extraDns = opts.extraSans?.dns ?? [];
  const extraIp = opts.extraSans?.ip ?? [];
  if (extraDns.length + extraIp.length > MAX_EXTRA_SANS) {
    throw new CaError("invalid_identity", `more than ${MAX_EXTRA_SANS} extra SANs`);
  }
  // Names under `svc.<td>` stand for service identities (see serviceDnsName): nobody may
  // claim one through extraSans, or a control leaf could pass a native name check as a service.
  const reserved = `.svc.${state.trustDomain}`;
  for (const d of extraDns) {
    if (d.toLowerCase().endsWith(reserved)) {
      throw new CaError("invalid_identity", `DNS name ${d} is reserved for service identities`);
    }
  }
  if (opts.identity.kind === "service") {
    const dns = serviceDnsName(state.trustDomain, opts.identity.service);
    if (dns !== null) sans.push({ type: "dns", value: dns });
  }
  for (const d of extraDns) sans.push({ type: "dns", value: d });
  for (const ip of extraIp) sans.push({ type: "ip", value: ip });
  const serial = _randomSerial();
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${_identityName(opts.identity)}, O=skein`,
    issuer: rootCert.subject,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    signingAlgorithm: EC_ALGORITHM,
    publicKey,
    signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(sans, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert),
    ],
  });
  return {
    // The chain a peer needs to reach the root: the leaf, then the intermediate if one signed.
    certPem: leaf.toString("pem") + "\n" + signer.chainPem,
    caPem: trustBundlePem(state),
    spiffeId,
    serial,
    notBefore: leaf.notBefore.getTime(),
    notAfter: leaf.notAfter.getTime(),
  };
}

/** What signs leaves now: the active root's intermediate when it has one, else the root. */
export interface ActiveSigner {
  /** `intermediate` (offline root) or `root` (single-root CA). */
  readonly kind: "root" | "intermediate";
  /** Hex SKI of the signing certificate. */
  readonly id: string;
  /** The signing certificate. */
  readonly certPem: string;
  /** Its private key. */
  readonly keyPem: string;
  /** Validity start, ms since the epoch. */
  readonly notBefore: number;
  /** Validity end, ms since the epoch. */
  readonly notAfter: number;
  /** What a leaf carries after itself so peers can reach the root ("" for a root signer). */
  readonly chainPem: string;
}

/** The certificate and key that sign leaves now (see {@linkcode ActiveSigner}). */
export function activeSigner(state: CaState): ActiveSigner {
  const root = _activeRoot(state);
  const i = root.intermediate;
  if (i !== undefined) {
    return { kind: "intermediate", ...i, chainPem: i.certPem };
  }
  if (root.keyPem === undefined) {
    throw new CaError("invalid_state", `root ${root.id} has neither its key nor an intermediate`);
  }
  return { kind: "root", ...root, keyPem: root.keyPem, chainPem: "" };
}

/** Id of what signs leaves now: a control node re-issues its own leaf when it changes. */
export function activeSignerId(state: CaState): string {
  const root = _activeRoot(state);
  return root.intermediate?.id ?? root.id;
}

/** The refusal for operations that need the root key of a CA whose root is kept offline. */
export function rootOfflineError(): CaError {
  return new CaError(
    "root_offline",
    "the root key is offline, so no control node can make or sign with a new root; to replace " +
      "the intermediate, run `skein ca intermediate --root-cert ROOT.pem --root-key ROOT.key " +
      "--out DIR` where the root key is kept, then `skein ctl ca rotate --intermediate-cert " +
      "DIR/intermediate.pem --intermediate-key DIR/intermediate.key`",
  );
}

/**
 * The DNS SAN a service leaf carries besides its SPIFFE id: `<service>.svc.<trust_domain>`, or
 * null when the service name is not plain lowercase DNS labels (such a leaf gets no DNS SAN).
 *
 * Why this is safe: the name is derived by the CA from the authenticated identity, never from
 * the CSR, and the mapping is one-to-one (the `.svc.<td>` suffix is fixed, and extraSans may not
 * use it), so a valid mesh certificate for this name is a certificate of this service and
 * nothing else. Only lowercase names get one because DNS names compare case-insensitively while
 * SPIFFE ids do not: `Ledger` must never verify as `ledger`. It lets a client that verifies
 * server names natively (rustls, `Deno.connectTls`) check "this server is service X" without
 * reading the URI SAN; the URI SAN stays the identity everywhere else.
 */
export function serviceDnsName(trustDomain: string, service: string): string | null {
  const name = `${service}.svc.${trustDomain}`;
  if (name.length > _DNS_NAME_MAX_CHARS || !_DNS_LABELS.test(service)) return null;
  if (!_DNS_LABELS.test(trustDomain)) return null;
  return name;
}

/** A key pair and leaf made in one step, for control nodes (which are the CA) and tests. */
export interface IssuedCertificate extends SignedCertificate {
  /** PKCS#8 PEM private key. Secret: never log it. */
  readonly keyPem: string;
}

/**
 * Generates a key and a leaf for `identity` in one step. Control nodes use it for their own
 * certificate; proxies must not (their key is generated on their machine, see `mesh/identity`).
 */
export async function issueCertificate(
  state: CaState,
  opts: Omit<SignCsrOptions, "csrPem">,
): Promise<IssuedCertificate> {
  const keys = await generateEcKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${_identityName(opts.identity)}`,
    keys,
    signingAlgorithm: EC_ALGORITHM,
  });
  const signed = await signCsr(state, { ...opts, csrPem: csr.toString("pem") });
  return { ...signed, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** Adds `spiffeId` to the revocation list (idempotent: the first revocation time is kept). */
export function revokeIdentity(
  state: CaState,
  spiffeId: string,
  opts: { now: number; reason?: string },
): CaState {
  const parsed = parseSpiffeId(spiffeId);
  if (!parsed || parsed.trustDomain !== state.trustDomain) {
    throw new CaError("invalid_identity", `not a SPIFFE id of ${state.trustDomain}: ${spiffeId}`);
  }
  if (isRevoked(state, spiffeId)) return state;
  if (state.revoked.length >= MAX_REVOKED_IDENTITIES) {
    throw new CaError(
      "too_many_revocations",
      `revocation list is full (${MAX_REVOKED_IDENTITIES} identities)`,
    );
  }
  const entry: RevokedIdentity = { spiffeId, revokedAt: opts.now, reason: opts.reason ?? "" };
  const revoked = [...state.revoked, entry].sort((a, b) => a.spiffeId < b.spiffeId ? -1 : 1);
  return { ...state, revoked };
}

/** Removes `spiffeId` from the revocation list. */
export function unrevokeIdentity(state: CaState, spiffeId: string): CaState {
  if (!isRevoked(state, spiffeId)) return state;
  return { ...state, revoked: state.revoked.filter((r) => r.spiffeId !== spiffeId) };
}

/** Whether `spiffeId` is revoked; takes the state or just its revocation list. */
export function isRevoked(
  from: CaState | readonly RevokedIdentity[],
  spiffeId: string,
): boolean {
  const list = "revoked" in from ? from.revoked : from;
  // Sorted list: binary search keeps the per-handshake check cheap at the list's bound.
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const id = list[mid]!.spiffeId;
    if (id === spiffeId) return true;
    if (id < spiffeId) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** A set-backed revocation check for hot paths (one per handshake). */
export function revocationChecker(state: CaState): (spiffeId: string) => boolean {
  const set = new Set(state.revoked.map((r) => r.spiffeId));
  return (id) => set.has(id);
}

// ---------------------------------------------------------------------------------------------

/**
 * A new self-signed root and its key. `pathLength` 1 makes a root meant to stay offline and
 * certify an intermediate (`control/ca/intermediate.ts`); 0 a root that signs leaves itself.
 */
export function newRootCertificate(opts: {
  trustDomain: string;
  name: string;
  generation: number;
  now: number;
  validityMs?: number;
  pathLength?: number;
}): Promise<CaRoot & { keyPem: string }> {
  return _newRoot(
    opts.trustDomain,
    opts.name,
    opts.generation,
    opts.now,
    opts.validityMs,
    opts.pathLength ?? 0,
  );
}

function _activeRoot(state: CaState): CaRoot {
  const root = state.roots.find((r) => r.id === state.activeRootId);
  if (!root) throw new CaError("invalid_state", `active root ${state.activeRootId} not found`);
  return root;
}

function _identityName(id: Identity): string {
  return identityName(id);
}

function _identityUri(state: CaState, id: Identity): string {
  try {
    return spiffeIdFor(state.trustDomain, id);
  } catch (e) {
    throw new CaError("invalid_identity", (e as Error).message);
  }
}

/** 128 random bits, positive and without a leading zero byte (RFC 5280 serials). */
function _randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x40;
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function _verifiedCsrKey(csrPem: string): Promise<CryptoKey> {
  if (csrPem.length > MAX_CSR_PEM_BYTES) {
    throw new CaError("invalid_csr", `CSR is ${csrPem.length} bytes, over ${MAX_CSR_PEM_BYTES}`);
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (e) {
    throw new CaError("invalid_csr", `CSR does not parse: ${(e as Error).message}`);
  }
  const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== "ECDSA" || alg.namedCurve !== "P-256") {
    throw new CaError(
      "unsupported_key",
      `CSR key is ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ""}; expected ECDSA P-256`,
    );
  }
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new CaError("bad_csr_signature", "CSR signature does not verify");
  return await csr.publicKey.export(EC_ALGORITHM, ["verify"]);
}

async function _newRoot(
  trustDomain: string,
  name: string,
  generation: number,
  now: number,
  validityMs = ROOT_VALIDITY_MS_DEFAULT,
  pathLength = 0,
): Promise<CaRoot & { keyPem: string }> {
  const keys = await generateEcKeyPair();
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: _randomSerial(),
    name: `CN=${name} root ${generation}, O=skein, OU=${trustDomain}`,
    notBefore: new Date(now - CLOCK_SKEW_ALLOWANCE_MS),
    notAfter: new Date(now + validityMs),
    signingAlgorithm: EC_ALGORITHM,
    keys,
    extensions: [
      // pathlen:0 for a root that signs leaves itself; 1 lets it certify one intermediate.
      new x509.BasicConstraintsExtension(true, pathLength, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      ski,
      new x509.SubjectAlternativeNameExtension([{
        type: "url",
        value: `spiffe://${trustDomain}`,
      }], false),
    ],
  });
  return {
    id: ski.keyId,
    generation,
    certPem: cert.toString("pem") + "\n",
    keyPem: await exportPrivateKeyPem(keys.privateKey),
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
  };
}
