/**
 * Who may call which control API route (SPEC section 2), and the decision for a principal.
 * @module
 */
import { type Role, roleAllows } from "./operator_token.ts";

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
  if (p === "/ui" || p.startsWith("/ui/")) return read ? _READ : _ADMIN;
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
    case "heartbeat":
      // The body names instances; the handler must check they belong to the proxy's service.
      return m === "PUT" ? { kind: "role", role: "operator", proxy: "any" } : _ADMIN;
    case "catalog":
      return read ? _READ_OR_PROXY : _ADMIN;
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
