/**
 * A proxy's first certificate: load the identity from `data_dir`, or else redeem the join token
 * at the control API (`GET /v1/ca/roots` for the trust domain, `POST /v1/ca/sign`) with a key
 * generated here, and save the result. Renewals authenticate with the current certificate
 * ({@linkcode requestRenewal}).
 * @module
 */
import type { Logger } from "../../common/log.ts";
import { identityLabel, type SpiffeId, type TlsMaterial } from "../../common/tls/mod.ts";
import { createKeyAndCsr } from "./csr.ts";
import { type CertInfo, clockSkewProblem, parseCert } from "./cert_info.ts";
import { keyMatchesCert, loadIdentity, saveIdentity } from "./store.ts";
import type { SignResponse } from "./renewer.ts";

/** Largest token file read; a join token is about 50 characters, one per line. */
export const MAX_TOKEN_FILE_BYTES = 4096;
/** Most join tokens read from one token file (one per local service at most is useful). */
export const MAX_TOKENS_PER_FILE = 64;
/** Folder of `data_dir` holding the identities of the local services after the first. */
export const IDENTITIES_DIR = "identities";
/** How long enrolment keeps trying control nodes that are unreachable or have no CA yet. */
export const ENROLL_TIMEOUT_MS_DEFAULT = 30_000;
/** Timeout of one request to a control node. */
export const ENROLL_REQUEST_TIMEOUT_MS = 5_000;
/** Pause between two rounds over the control URLs. */
export const ENROLL_RETRY_PAUSE_MS = 500;
/** Largest control API answer read during enrolment. */
export const MAX_ENROLL_RESPONSE_BYTES = 256 * 1024;

/** Enrolment failed for a reason retrying will not fix (refused token, bad answer). */
export class EnrollError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "EnrollError";
  }
}

/** No control node answered in time: trying another token would not help either. */
export class EnrollTimeoutError extends EnrollError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "EnrollTimeoutError";
  }
}

/** Options of {@linkcode obtainIdentity}. */
export interface ObtainIdentityOptions {
  /** Where the identity is stored (`identity.json`, `cert.pem`, …). */
  dataDir: string;
  /** File holding the join token. */
  tokenFile: string;
  /** Base URLs of the control API, tried in order. */
  controlUrls: readonly string[];
  /** Service named in the CSR (the CA signs the token's service whatever this says). */
  service: string;
  /** Logger; never given the key or the token. */
  logger: Logger;
  /** Overall time for reaching a control node with a CA. @default ENROLL_TIMEOUT_MS_DEFAULT */
  timeoutMs?: number;
  /** HTTP client. @default globalThis.fetch */
  fetch?: (req: Request) => Promise<Response>;
  /** Wall clock, ms since the epoch. @default Date.now */
  now?: () => number;
}

/** Outcome of {@linkcode obtainIdentity}. */
export type ObtainedIdentity =
  | { readonly kind: "stored" | "issued"; readonly material: TlsMaterial; readonly cert: CertInfo }
  | { readonly kind: "none"; readonly reason: string };

/**
 * The proxy's identity: the stored one while it is unexpired, else a new certificate obtained
 * with the join token in `tokenFile`, else `none` (no token file). Throws
 * {@linkcode EnrollError} when a token exists but the control plane refuses it or never answers.
 */
export async function obtainIdentity(opts: ObtainIdentityOptions): Promise<ObtainedIdentity> {
  const now = opts.now ?? Date.now;
  const stored = await loadIdentity(opts.dataDir);
  if (stored) {
    const cert = parseCert(stored.certPem);
    if (cert.notAfter > now()) return { kind: "stored", material: stored, cert };
    opts.logger.warn("stored certificate has expired; enrolling again", {
      spiffe_id: cert.spiffeId?.uri ?? "none",
      not_after: new Date(cert.notAfter).toISOString(),
    });
  }
  const token = (await readTokens(opts.tokenFile))?.[0] ?? null;
  if (token === null) {
    return {
      kind: "none",
      reason: stored
        ? `the stored certificate has expired and there is no token file at ${opts.tokenFile}`
        : `no identity in ${opts.dataDir} and no token file at ${opts.tokenFile}`,
    };
  }
  const material = await _enroll(opts, token, opts.service);
  const cert = parseCert(material.certPem);
  await saveIdentity(opts.dataDir, material);
  return { kind: "issued", material, cert };
}

/**
 * The join tokens of a token file, one per line (blank lines ignored); null when the file does
 * not exist. Throws {@linkcode EnrollError} for an empty or oversized file.
 */
export async function readTokens(path: string): Promise<string[] | null> {
  let text: string;
  try {
    const st = await Deno.stat(path);
    if (st.size > MAX_TOKEN_FILE_BYTES) {
      throw new EnrollError(`token file ${path} is ${st.size} bytes, over ${MAX_TOKEN_FILE_BYTES}`);
    }
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const tokens = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  if (tokens.length === 0) throw new EnrollError(`token file ${path} is empty`);
  if (tokens.length > MAX_TOKENS_PER_FILE) {
    throw new EnrollError(
      `token file ${path} holds ${tokens.length} tokens, over ${MAX_TOKENS_PER_FILE}`,
    );
  }
  return tokens;
}

/**
 * Where the identity of local service `service` lives: `dataDir` itself for the first one
 * (so proxies enrolled before several services were possible keep theirs), else
 * `dataDir/identities/<service>/`.
 */
export function identityDir(dataDir: string, service: string, first: string): string {
  return service === first ? dataDir : `${dataDir}/${IDENTITIES_DIR}/${service}`;
}

/** Options of {@linkcode obtainIdentities}. */
export interface ObtainIdentitiesOptions extends Omit<ObtainIdentityOptions, "service"> {
  /**
   * The distinct local services, first one first. Empty: the proxy fronts nothing and takes
   * whatever service its (first usable) token names, stored in `dataDir`.
   */
  services: readonly string[];
}

/** One local service's identity. */
export interface ServiceIdentity {
  /** The service its certificate names. */
  readonly service: string;
  /** Where it is stored. */
  readonly dir: string;
  /** Loaded from disk or just issued. */
  readonly kind: "stored" | "issued";
  /** Certificate, key and bundle. */
  readonly material: TlsMaterial;
  /** The parsed certificate. */
  readonly cert: CertInfo;
}

/** Outcome of {@linkcode obtainIdentities}. */
export interface ObtainedIdentities {
  /** The identities found or issued, in the order of `services`. */
  readonly identities: readonly ServiceIdentity[];
  /** Services still without an identity (empty when all are there). */
  readonly missing: readonly string[];
  /** Why the missing ones are missing: no token file, refused tokens (no secrets). */
  readonly reasons: readonly string[];
}

/**
 * One identity per local service: each stored, unexpired one is loaded, and only the services
 * without one redeem tokens from `tokenFile`, each token once, in file order, until none is
 * missing. The CA decides a token's service; a token for a service that needs none is wasted
 * with a warning. A refused token is reported in `reasons` and the next one is tried; the
 * caller decides what a non-empty `missing` means.
 */
export async function obtainIdentities(opts: ObtainIdentitiesOptions): Promise<ObtainedIdentities> {
  const now = opts.now ?? Date.now;
  const services = [...new Set(opts.services)];
  const first = services[0];
  const found = new Map<string, ServiceIdentity>();
  const reasons: string[] = [];
  // With no local service, the data_dir identity is whatever service the token named.
  const slots = first === undefined ? [null] : services;
  for (const service of slots) {
    const dir = service === null ? opts.dataDir : identityDir(opts.dataDir, service, first!);
    const stored = await loadIdentity(dir);
    if (!stored) continue;
    const cert = parseCert(stored.certPem);
    const named = _proxyLabel(cert.spiffeId);
    if (named === null || (service !== null && named !== service)) {
      opts.logger.warn("stored certificate names another service; enrolling again", {
        dir,
        spiffe_id: cert.spiffeId?.uri ?? "none",
        expected: service ?? "",
      });
      continue;
    }
    if (cert.notAfter <= now()) {
      opts.logger.warn("stored certificate has expired; enrolling again", {
        spiffe_id: cert.spiffeId?.uri ?? "none",
        not_after: new Date(cert.notAfter).toISOString(),
      });
      reasons.push(`the stored certificate of ${named} has expired`);
      continue;
    }
    found.set(named, { service: named, dir, kind: "stored", material: stored, cert });
  }
  const missing = () =>
    first === undefined
      ? (found.size === 0 ? [opts.dataDir] : [])
      : services.filter((s) => !found.has(s));
  if (missing().length > 0) {
    const tokens = await readTokens(opts.tokenFile);
    if (tokens === null) {
      reasons.push(`no token file at ${opts.tokenFile}`);
    } else {
      for (const [i, token] of tokens.entries()) {
        if (missing().length === 0) break;
        let material: TlsMaterial;
        try {
          // The CSR's name is a hint only: the CA signs the token's service.
          material = await _enroll(opts, token, first === undefined ? "proxy" : missing()[0]!);
        } catch (e) {
          if (!(e instanceof EnrollError)) throw e;
          reasons.push(`token ${i + 1} of ${opts.tokenFile}: ${e.message}`);
          if (e instanceof EnrollTimeoutError) break;
          continue;
        }
        const cert = parseCert(material.certPem);
        const named = _proxyLabel(cert.spiffeId);
        const wanted = named !== null && (first === undefined || missing().includes(named));
        if (!wanted) {
          opts.logger.warn("a join token was for a service this proxy needs no identity for", {
            // Not "token…" keys: the logger redacts those, and these name no secret.
            line: i + 1,
            file: opts.tokenFile,
            spiffe_id: cert.spiffeId?.uri ?? "none",
          });
          continue;
        }
        const dir = first === undefined ? opts.dataDir : identityDir(opts.dataDir, named, first);
        await saveIdentity(dir, material);
        found.set(named, { service: named, dir, kind: "issued", material, cert });
      }
    }
  }
  const order = first === undefined ? [...found.keys()] : services;
  return {
    identities: order.flatMap((s) => found.get(s) ?? []),
    missing: first === undefined ? (found.size === 0 ? ["(any)"] : []) : missing(),
    reasons,
  };
}

/** The label of a proxy identity (a service, or `gateway/<name>`); null for any other id. */
function _proxyLabel(id: SpiffeId | null): string | null {
  return id === null || id.kind === "control" ? null : identityLabel(id);
}

/** A control node's answer: definitive (refusal) or worth trying elsewhere (503, network). */
class _Retryable extends Error {}

async function _call(
  opts: { fetch?: (req: Request) => Promise<Response> },
  base: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const doFetch = opts.fetch ?? ((r: Request) => fetch(r));
  const url = base.replace(/\/+$/, "") + path;
  let res: Response;
  let text: string;
  try {
    res = await doFetch(
      new Request(url, {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(ENROLL_REQUEST_TIMEOUT_MS),
      }),
    );
    text = await res.text();
  } catch (e) {
    throw new _Retryable(`${url}: ${(e as Error).message}`);
  }
  if (text.length > MAX_ENROLL_RESPONSE_BYTES) {
    throw new EnrollError(`${url}: answer of ${text.length} bytes is too large`);
  }
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    if (res.status >= 500) throw new _Retryable(`${url}: HTTP ${res.status}`);
    throw new EnrollError(`${url}: HTTP ${res.status} with a non-JSON body`);
  }
  if (res.ok) return json;
  const err = (json.error ?? {}) as { code?: string; message?: string };
  const msg = `${url}: ${res.status} ${err.code ?? "error"}: ${err.message ?? ""}`;
  // 5xx: no leader, no quorum or no CA yet; another node or a later try may answer.
  if (res.status >= 500) throw new _Retryable(msg);
  throw new EnrollError(msg);
}

async function _enroll(
  opts: Omit<ObtainIdentityOptions, "service">,
  token: string,
  csrService: string,
): Promise<TlsMaterial> {
  if (opts.controlUrls.length === 0) throw new EnrollError("no control URL configured");
  const deadline = Date.now() + (opts.timeoutMs ?? ENROLL_TIMEOUT_MS_DEFAULT);
  let last = "";
  while (true) {
    for (const base of opts.controlUrls) {
      try {
        const roots = await _call(opts, base, "/v1/ca/roots");
        const td = roots.trust_domain;
        if (typeof td !== "string") throw new EnrollError(`${base}: roots without trust_domain`);
        const { keyPem, csrPem } = await createKeyAndCsr({
          service: csrService,
          trustDomain: td,
        });
        const signed = await _call(opts, base, "/v1/ca/sign", { csr: csrPem, token });
        const { certPem, caPem } = signed;
        if (typeof certPem !== "string" || typeof caPem !== "string") {
          throw new EnrollError(`${base}: sign answer without certPem/caPem`);
        }
        if (!keyMatchesCert(certPem, keyPem)) {
          throw new EnrollError(`${base}: the signed certificate is not for the key sent`);
        }
        // Peers verify with the same clocks: a skewed one here fails every handshake later.
        const skew = clockSkewProblem(parseCert(certPem), Date.now());
        if (skew !== null) throw new EnrollError(skew);
        return { certPem, keyPem, caPem };
      } catch (e) {
        if (!(e instanceof _Retryable)) throw e;
        last = e.message;
      }
    }
    if (Date.now() + ENROLL_RETRY_PAUSE_MS > deadline) {
      throw new EnrollTimeoutError(
        `no control node issued a certificate in time; last error: ${last}`,
      );
    }
    opts.logger.debug("enrolment not possible yet; retrying", { reason: last });
    await new Promise((r) => setTimeout(r, ENROLL_RETRY_PAUSE_MS));
  }
}

/** Options of {@linkcode requestRenewal}. */
export interface RenewalRequestOptions {
  /** Base URLs of the control API, tried in order. */
  controlUrls: readonly string[];
  /** A fetch that presents the current certificate (see `ControlHttp`). */
  fetch: (req: Request) => Promise<Response>;
  /** Logger. */
  logger: Logger;
}

/**
 * Sends a CSR to `POST /v1/ca/sign` authenticated by the current client certificate (no token),
 * trying each control URL once; the renewer retries the whole call with backoff.
 */
export async function requestRenewal(
  opts: RenewalRequestOptions,
  csrPem: string,
): Promise<SignResponse> {
  const callOpts = { ...opts, dataDir: "", tokenFile: "", service: "" };
  const failures: string[] = [];
  for (const base of opts.controlUrls) {
    try {
      const signed = await _call(callOpts, base, "/v1/ca/sign", { csr: csrPem });
      const { certPem, caPem } = signed;
      if (typeof certPem !== "string" || typeof caPem !== "string") {
        throw new EnrollError(`${base}: sign answer without certPem/caPem`);
      }
      return { certPem, caPem };
    } catch (e) {
      if (!(e instanceof _Retryable)) throw e;
      failures.push(e.message);
    }
  }
  throw new EnrollError(`no control node renewed the certificate: ${failures.join("; ")}`);
}
