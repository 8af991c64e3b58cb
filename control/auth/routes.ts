/**
 * Who may call which control API route (SPEC section 2), and the decision for a principal.
 * @module
 */
import { identityLabel, parseSpiffeId, type SpiffeId } from "../../common/tls/mod.ts";
import { type OperatorTokenRecord, type Role, roleAllows } from "./operator_token.ts";

/**
 * What a route needs.
 * - `public`: anyone (health, metrics, the trust bundle).
 * - `role`: an operator token with at least `role`; `proxy` says whether a proxy's client
 *   certificate also suffices: `none`, `any` service, or only `own_service` (the `:name` in the
 *   path, which is copied into `service`).
 * - `join_token_or_cert`: `POST /v1/ca/sign`: a proxy's current certificate (renewal) or a join
 *   token (first certificate); the handler redeems the token itself.
 */
export type RouteRequirement =
  | { readonly kind: "public" }
  | {
    readonly kind: "role";
    readonly role: Role;
    readonly proxy: "none" | "any" | "own_service";
    readonly service?: string;
  }
  | { readonly kind: "join_token_or_cert" };

/** Who is calling, as established by the API's TLS layer and token check. */
export type Principal =
  | { readonly kind: "anonymous" }
  | { readonly kind: "operator"; readonly role: Role; readonly tokenId: string }
  | { readonly kind: "proxy"; readonly service: string; readonly spiffeId: string }
  | { readonly kind: "control"; readonly node: string; readonly spiffeId: string };

/** Outcome of {@linkcode authorizeRoute}: refusals carry the HTTP status to answer. */
export type RouteDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly status: 401 | 403; readonly reason: string };

const _PUBLIC: RouteRequirement = { kind: "public" };
const _ADMIN: RouteRequirement = { kind: "role", role: "admin", proxy: "none" };
const _OPERATOR: RouteRequirement = { kind: "role", role: "operator", proxy: "none" };
const _READ: RouteRequirement = { kind: "role", role: "read", proxy: "none" };
const _READ_OR_PROXY: RouteRequirement = { kind: "role", role: "read", proxy: "any" };

/**
 * The requirement of a control API route (`path` may carry a query string). Unknown routes
 * need `admin`, so a caller without a token learns nothing about which paths exist (fail
 * closed).
 */
export function requiredRole(method: string, path: string): RouteRequirement {
  const m = method.toUpperCase();
  const read = m === "GET" || m === "HEAD";
  const q = path.search(/[?#]/);
  const bare = q >= 0 ? path.slice(0, q) : path;
  const p = bare.length > 1 && bare.endsWith("/") ? bare.slice(0, -1) : bare;
  const seg = p.split("/").slice(1);
  if (p === "/v1/health" || p === "/metrics") return read ? _PUBLIC : _ADMIN;
  // The dashboard's page and static files hold no data; its data comes from /v1/dashboard.
  if (p === "/ui" || p.startsWith("/ui/")) return read ? _PUBLIC : _ADMIN;
  if (seg[0] !== "v1") return _ADMIN;
  switch (seg[1]) {
    case "members":
      return read ? _READ : _ADMIN;
    case "tokens":
      return _ADMIN;
    case "ca":
      if (p === "/v1/ca/roots" && read) return _PUBLIC;
      if (p === "/v1/ca/sign" && m === "POST") return { kind: "join_token_or_cert" };
      return read ? _READ : _ADMIN;
    case "services": {
      if (read) return _READ_OR_PROXY;
      // PUT|DELETE /v1/services/:name/instances/:id: a proxy registers its own service only.
      if (seg.length === 5 && seg[3] === "instances" && (m === "PUT" || m === "DELETE")) {
        return { kind: "role", role: "operator", proxy: "own_service", service: seg[2] };
      }
      return _OPERATOR;
    }
    case "proxies":
      return read ? _READ : _ADMIN;
    case "heartbeat":
      // The body names instances; the handler must check they belong to the proxy's service.
      return m === "PUT" ? { kind: "role", role: "operator", proxy: "any" } : _ADMIN;
    case "catalog":
      return read ? _READ_OR_PROXY : _ADMIN;
    case "dashboard":
      return read ? _READ : _ADMIN;
    case "resources":
      return read ? _READ_OR_PROXY : _OPERATOR;
    default:
      return _ADMIN;
  }
}

/**
 * Decides whether `principal` meets `req`. 401 means "say who you are" (no or bad credentials),
 * 403 "known, but not allowed". Control nodes are not operators: a follower forwarding a
 * request must pass the original caller's credentials on, not its own identity.
 */
export function authorizeRoute(req: RouteRequirement, principal: Principal): RouteDecision {
  if (req.kind === "public") return { allowed: true };
  if (req.kind === "join_token_or_cert") {
    if (principal.kind === "proxy" || principal.kind === "control") return { allowed: true };
    return { allowed: false, status: 401, reason: "join token or client certificate required" };
  }
  switch (principal.kind) {
    case "anonymous":
      return { allowed: false, status: 401, reason: "bearer token required" };
    case "operator":
      return roleAllows(principal.role, req.role)
        ? { allowed: true }
        : { allowed: false, status: 403, reason: `role ${req.role} required` };
    case "proxy":
      if (req.proxy === "any") return { allowed: true };
      if (req.proxy === "own_service" && req.service === principal.service) {
        return { allowed: true };
      }
      return {
        allowed: false,
        status: 403,
        reason: req.proxy === "own_service"
          ? `proxy for ${principal.service} may not act for service ${req.service}`
          : `role ${req.role} required`,
      };
    case "control":
      return { allowed: false, status: 403, reason: `role ${req.role} required` };
  }
}

/**
 * The principal a verified client certificate stands for: `proxy` for `svc/<service>`, and for
 * a gateway's `gateway/<name>` with the service `gateway/<name>` (no service is named so, so
 * it may read what any proxy reads but act for no service), `control` for `control/<node>`,
 * `anonymous` without a certificate.
 */
export function principalFromPeer(peer: SpiffeId | null): Principal {
  if (!peer) return { kind: "anonymous" };
  if (peer.kind === "control") return { kind: "control", node: peer.node, spiffeId: peer.uri };
  return { kind: "proxy", service: identityLabel(peer), spiffeId: peer.uri };
}

/**
 * Who sent a write that a follower forwards to the leader over the peer transport: the SPIFFE id
 * of the original client certificate and the id of the operator token the follower
 * authenticated (never the secret). Trustworthy because control nodes talk mTLS to each other.
 */
export interface ForwardedCaller {
  /** The original caller's verified SPIFFE id, or null when it presented no certificate. */
  readonly peer: string | null;
  /** The operator token the follower accepted, by id, or null. */
  readonly tokenId: string | null;
}

/** The fields of a registry command that decide who may propose it. */
export interface CommandShape {
  /** Command type (`register_instance`, `put_resource`, ...). */
  readonly type: string;
  /** The instance of `register_instance`. */
  readonly instance?: { readonly service: string };
  /** The service of `deregister_instance`. */
  readonly service?: string;
}

/**
 * What proposing a registry command needs: the same as the API route that produces it.
 * `consume_join_token` is its own credential (the apply checks the token by id), and unknown
 * types need `admin` (fail closed).
 */
export function commandRequirement(cmd: CommandShape): RouteRequirement {
  switch (cmd.type) {
    case "register_instance":
      return {
        kind: "role",
        role: "operator",
        proxy: "own_service",
        service: cmd.instance?.service,
      };
    case "deregister_instance":
      return { kind: "role", role: "operator", proxy: "own_service", service: cmd.service };
    case "put_resource":
    case "delete_resource":
    case "rollback_resource":
    case "set_health":
      return _OPERATOR;
    case "consume_join_token":
      return _PUBLIC;
    default:
      return _ADMIN;
  }
}

/**
 * The leader's check of a forwarded write against the original caller: its operator token
 * (looked up by id in the leader's own records, so a revocation the follower has not applied yet
 * still counts) or else its certificate identity.
 */
export function authorizeCommand(
  cmd: CommandShape,
  caller: ForwardedCaller,
  ctx: { readonly tokens: readonly OperatorTokenRecord[]; readonly now: number },
): RouteDecision {
  let principal: Principal;
  if (caller.tokenId !== null) {
    const rec = ctx.tokens.find((r) => r.id === caller.tokenId);
    if (!rec) return { allowed: false, status: 401, reason: `token ${caller.tokenId} is unknown` };
    if (rec.expiresAt !== null && ctx.now >= rec.expiresAt) {
      return { allowed: false, status: 401, reason: `token ${caller.tokenId} has expired` };
    }
    principal = { kind: "operator", role: rec.role, tokenId: rec.id };
  } else {
    principal = principalFromPeer(caller.peer === null ? null : parseSpiffeId(caller.peer));
  }
  return authorizeRoute(commandRequirement(cmd), principal);
}
