/**
 * Evaluation of `Authorization` resources on the inbound side of a proxy: who (the caller's
 * verified SPIFFE id) may call what (method, path) on the local service.
 * @module
 */
import type { Authorization } from "../../config/mod.ts";
import type { z } from "zod";
import { parseSpiffeId, type SpiffeId } from "../../common/tls/mod.ts";
import { compilePathPattern, normalizePath, type PathMatcher } from "./path.ts";

/** A validated `Authorization` resource (SPEC section 4). */
export type AuthorizationResource = z.infer<typeof Authorization>;

/** Why a request was allowed or denied; also the value of `x-skein-denied`. */
export type DecisionReason =
  | "allowed_by_rule"
  | "denied_by_rule"
  | "default_allow"
  | "default_deny"
  | "no_policy"
  | "no_identity"
  | "invalid_path"
  | "policy_unreadable"
  /** Egress in `registered_only` mode: neither a mesh service nor an external service. */
  | "unregistered_destination";

/** The outcome for one request. */
export interface Decision {
  /** Whether the request may reach the local service. */
  readonly allowed: boolean;
  /** Why. */
  readonly reason: DecisionReason;
  /** The rule that decided, as `allow[i]` / `deny[i]`, or null for defaults. */
  readonly rule: string | null;
}

/** What the inbound side knows about a request. */
export interface AuthzRequest {
  /** The caller's verified identity from its client certificate; null if there is none. */
  readonly caller: SpiffeId | null;
  /** HTTP method (any case). */
  readonly method: string;
  /** Request target as received (path, maybe with query). */
  readonly path: string;
}

type _CallerMatcher = (caller: SpiffeId) => boolean;

interface _Rule {
  readonly name: string;
  readonly from: _CallerMatcher;
  /** Upper-case methods, or null for any. */
  readonly methods: ReadonlySet<string> | null;
  /** Path matchers, or null for any. */
  readonly paths: readonly PathMatcher[] | null;
  /** The decisions this rule yields, built once so the hot path does not allocate. */
  readonly denied: Decision;
  readonly allowed: Decision;
}

/** An `Authorization` resource compiled for the hot path. Build once per resource version. */
export interface CompiledAuthorization {
  /** The protected service. */
  readonly service: string;
  /** Outcome when no rule matches. */
  readonly defaultAllow: boolean;
  /** Whether allowed calls are audited too. */
  readonly auditAllowed: boolean;
  /** The service's resource could not be read: every call is denied `policy_unreadable`. */
  readonly unreadable: boolean;
  readonly _deny: readonly _Rule[];
  readonly _allow: readonly _Rule[];
}

function _glob(s: string): RegExp {
  return new RegExp(
    "^" + s.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join(".*") + "$",
  );
}

/**
 * Compiles one `from` entry:
 * - `*`: any authenticated caller;
 * - `spiffe://…`: that exact SPIFFE id (`*` as a wildcard);
 * - `gateway/<name>`: that ingress gateway of this trust domain (`*` as a wildcard);
 * - anything else: a service name of this trust domain (`*` as a wildcard), so a certificate
 *   from a federated domain with the same service name does not match.
 */
function _compileFrom(entry: string, trustDomain: string): _CallerMatcher {
  if (entry === "*") return () => true;
  if (entry.startsWith("spiffe://")) {
    if (!entry.includes("*")) return (c) => c.uri === entry;
    const rx = _glob(entry);
    return (c) => rx.test(c.uri);
  }
  if (entry.startsWith("gateway/")) {
    const gw = entry.slice("gateway/".length);
    const rx = gw.includes("*") ? _glob(gw) : null;
    return (c) =>
      c.kind === "gateway" && c.trustDomain === trustDomain &&
      (rx === null ? c.gateway === gw : rx.test(c.gateway));
  }
  if (!entry.includes("*")) {
    return (c) => c.kind === "service" && c.service === entry && c.trustDomain === trustDomain;
  }
  const rx = _glob(entry);
  return (c) => c.kind === "service" && c.trustDomain === trustDomain && rx.test(c.service);
}

function _compileRule(
  name: string,
  r: { from: string[]; methods?: string[]; paths?: string[] },
  trustDomain: string,
): _Rule {
  const froms = r.from.map((f) => _compileFrom(f, trustDomain));
  const anyMethod = !r.methods || r.methods.length === 0 || r.methods.includes("*");
  return {
    name,
    from: froms.length === 1 ? froms[0]! : (c) => froms.some((f) => f(c)),
    methods: anyMethod ? null : _withHead(r.methods!.map((m) => m.toUpperCase())),
    paths: !r.paths || r.paths.length === 0 || r.paths.some((p) => p === "/*" || p === "/**")
      ? null
      : r.paths.map(compilePathPattern),
    denied: Object.freeze({ allowed: false, reason: "denied_by_rule", rule: name }),
    allowed: Object.freeze({ allowed: true, reason: "allowed_by_rule", rule: name }),
  };
}

/** Compiles a resource; `trustDomain` is the mesh's, for plain service names in `from`. */
export function compileAuthorization(
  res: AuthorizationResource,
  opts: { trustDomain: string },
): CompiledAuthorization {
  return {
    service: res.service,
    defaultAllow: res.default === "allow",
    auditAllowed: res.audit_allowed,
    unreadable: false,
    _deny: res.deny.map((r, i) => _compileRule(`deny[${i}]`, r, opts.trustDomain)),
    _allow: res.allow.map((r, i) => _compileRule(`allow[${i}]`, r, opts.trustDomain)),
  };
}

/**
 * The policy of a service whose `Authorization` could not be read: it denies every call (fail
 * closed), since skipping it would leave the service open to every mesh member.
 */
export function unreadableAuthorization(service: string): CompiledAuthorization {
  return {
    service,
    defaultAllow: false,
    auditAllowed: false,
    unreadable: true,
    _deny: [],
    _allow: [],
  };
}

/**
 * A rule naming GET also covers HEAD: servers answer HEAD with their GET handler, so a denied
 * GET must not stay reachable as HEAD (and an allowed GET may be probed with HEAD).
 */
function _withHead(methods: string[]): Set<string> {
  const set = new Set(methods);
  if (set.has("GET")) set.add("HEAD");
  return set;
}

function _matches(rule: _Rule, caller: SpiffeId, method: string, path: string): boolean {
  if (!rule.from(caller)) return false;
  if (rule.methods && !rule.methods.has(method)) return false;
  if (rule.paths && !rule.paths.some((m) => m(path))) return false;
  return true;
}

/** Options of {@linkcode evaluate}. */
export interface EvaluateOptions {
  /**
   * Outcome for a service with no `Authorization` resource. `allow` keeps a mesh usable before
   * policies exist (every caller is still an authenticated mesh member). @default "allow"
   */
  noPolicy?: "allow" | "deny";
}

/**
 * Decides one request. Order: a caller without identity is denied; then `deny` rules (first
 * match denies), then `allow` rules (first match allows), then the resource's default. Paths
 * are matched after {@linkcode normalizePath}; a target that is not a path (`*`, over
 * `MAX_AUTHZ_PATH_CHARS`) is denied as `invalid_path` whenever a policy exists.
 */
export function evaluate(
  policy: CompiledAuthorization | null,
  req: AuthzRequest,
  opts: EvaluateOptions = {},
): Decision {
  if (!req.caller) return NO_IDENTITY;
  if (!policy) {
    const allowed = (opts.noPolicy ?? "allow") === "allow";
    return { allowed, reason: "no_policy", rule: null };
  }
  return evaluateNormalized(policy, req.caller, req.method, normalizePath(req.path));
}

const NO_IDENTITY: Decision = Object.freeze({ allowed: false, reason: "no_identity", rule: null });
const INVALID_PATH: Decision = Object.freeze({
  allowed: false,
  reason: "invalid_path",
  rule: null,
});
const DEFAULT_ALLOW: Decision = Object.freeze({
  allowed: true,
  reason: "default_allow",
  rule: null,
});
const DEFAULT_DENY: Decision = Object.freeze({
  allowed: false,
  reason: "default_deny",
  rule: null,
});
const UNREADABLE: Decision = Object.freeze({
  allowed: false,
  reason: "policy_unreadable",
  rule: null,
});

/**
 * {@linkcode evaluate} for a caller whose path is already normalized (null: not a path), so a
 * proxy that also forwards the normalized path normalizes once.
 */
export function evaluateNormalized(
  policy: CompiledAuthorization,
  caller: SpiffeId | null,
  method: string,
  normalizedPath: string | null,
): Decision {
  if (!caller) return NO_IDENTITY;
  if (policy.unreadable) return UNREADABLE;
  if (normalizedPath === null) return INVALID_PATH;
  // Methods are case-sensitive (RFC 9110 section 9.1): `get` is not `GET`, so an allow rule
  // naming GET does not admit it. A deny rule matches any spelling, because some apps
  // upper-case the method before routing and would serve `delete` as DELETE.
  const upper = method.toUpperCase();
  for (const r of policy._deny) {
    if (_matches(r, caller, upper, normalizedPath)) return r.denied;
  }
  for (const r of policy._allow) {
    if (_matches(r, caller, method, normalizedPath)) return r.allowed;
  }
  return policy.defaultAllow ? DEFAULT_ALLOW : DEFAULT_DENY;
}

/**
 * Decides an opaque TCP connection, where no method or path is visible. It stands for every
 * request at once, so it is allowed only if the caller would be allowed whatever it sends:
 * any `deny` rule naming the caller denies (even one limited to some paths or methods, since
 * those cannot be told apart in a byte stream); otherwise an `allow` rule naming the caller
 * with neither `methods` nor `paths` (or `*`) allows; otherwise the default decides.
 */
export function evaluateTcp(policy: CompiledAuthorization, caller: SpiffeId | null): Decision {
  if (!caller) return NO_IDENTITY;
  if (policy.unreadable) return UNREADABLE;
  for (const r of policy._deny) {
    if (r.from(caller)) return r.denied;
  }
  for (const r of policy._allow) {
    if (r.methods === null && r.paths === null && r.from(caller)) return r.allowed;
  }
  return policy.defaultAllow ? DEFAULT_ALLOW : DEFAULT_DENY;
}

/** Parses a caller's SPIFFE id string (e.g. from `PeerInfo`) for {@linkcode AuthzRequest}. */
export function callerFromUri(uri: string | null | undefined): SpiffeId | null {
  return uri ? parseSpiffeId(uri) : null;
}
