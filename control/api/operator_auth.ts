/**
 * The operator bearer-token check behind {@linkcode ApiOptions.authorize}: 401 without a valid
 * token, 403 for too weak a role, and the routes proxies use left open until mTLS
 * authenticates them by certificate (docs/security.md).
 * @module
 */
import type { Logger } from "../../common/log.ts";
import {
  authenticate,
  authorizeRoute,
  type OperatorTokenRecord,
  requiredRole,
} from "../auth/mod.ts";
import type { AuthRequest } from "./app.ts";
import { ApiError } from "./errors.ts";

/** Options of {@linkcode operatorAuthorizer}. */
export interface OperatorAuthorizerOptions {
  /** The replicated operator token records (hashes only) on this node. */
  tokens: () => readonly OperatorTokenRecord[];
  /** Wall clock for token expiry, ms since the epoch. @default Date.now */
  now?: () => number;
  /** Where denied calls are audited. */
  log: Logger;
  /** Also audit allowed calls that needed a token (SPEC 5: "allowed calls on request"). @default false */
  auditAllowed?: boolean;
}

/**
 * Whether a route is open without an operator token for now: routes a proxy calls (its own
 * registration, heartbeats, catalog and resource reads, CA roots and sign) and the public
 * health and metrics. Once the API speaks mTLS these need the proxy's client certificate.
 */
export function openToProxies(method: string, path: string): boolean {
  const req = requiredRole(method, path);
  if (req.kind === "public" || req.kind === "join_token_or_cert") return true;
  return req.proxy !== "none";
}

/** Creates the `authorize` hook that checks operator bearer tokens against replicated hashes. */
export function operatorAuthorizer(
  opts: OperatorAuthorizerOptions,
): (req: AuthRequest) => void {
  const clock = opts.now ?? Date.now;
  return function authorizeOperator(req: AuthRequest): void {
    if (openToProxies(req.method, req.path)) return;
    const need = requiredRole(req.method, req.path);
    const auth = authenticate(opts.tokens(), req.authorization, clock());
    if (!auth.ok) {
      // Never the token itself: only why it failed.
      opts.log.warn("api call denied", {
        method: req.method,
        path: req.path,
        status: 401,
        reason: auth.reason,
      });
      throw auth.reason === "missing"
        ? new ApiError(401, "unauthenticated", "a bearer token is required for this route")
        : new ApiError(
          401,
          "invalid_token",
          `the bearer token is ${auth.reason === "expired" ? "expired" : "not valid"}`,
        );
    }
    const principal = {
      kind: "operator" as const,
      role: auth.record.role,
      tokenId: auth.record.id,
    };
    const d = authorizeRoute(need, principal);
    if (!d.allowed) {
      opts.log.warn("api call denied", {
        method: req.method,
        path: req.path,
        status: d.status,
        credential_id: auth.record.id,
        role: auth.record.role,
        reason: d.reason,
      });
      throw new ApiError(
        d.status,
        "forbidden",
        `token ${auth.record.id} has role ${auth.record.role}; this route needs ${
          need.kind === "role" ? need.role : "more"
        }`,
        { role: auth.record.role, required: need.kind === "role" ? need.role : null },
      );
    }
    if (opts.auditAllowed) {
      opts.log.info("api call allowed", {
        method: req.method,
        path: req.path,
        credential_id: auth.record.id,
        role: auth.record.role,
      });
    }
  };
}
