/**
 * The route check behind {@linkcode ApiOptions.authorize}: an operator bearer token when one is
 * sent, else the verified client certificate (proxies), else nobody. 401 without a usable
 * credential, 403 for one that is not enough (docs/security.md, route table).
 * @module
 */
import type { Logger } from "../../common/log.ts";
import {
  authenticate,
  authorizeRoute,
  HashIndex,
  type OperatorTokenRecord,
  type Principal,
  principalFromPeer,
  requiredRole,
} from "../auth/mod.ts";
import type { AuthRequest } from "./api_env.ts";
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
 * Creates the `authorize` hook: it answers the caller's {@linkcode Principal} or throws a 401/403
 * {@linkcode ApiError}. A bearer token, when present, decides (a certificate does not rescue a bad
 * token); without one the client certificate does, so proxies need no token. Control identities
 * are not operators. `POST /v1/ca/sign` passes through: its handler redeems a join token or
 * renews for the certificate's identity.
 */
export function operatorAuthorizer(
  opts: OperatorAuthorizerOptions,
): (req: AuthRequest) => Principal {
  const clock = opts.now ?? Date.now;
  // Rebuilt only when the replicated list is replaced (every change makes a new array).
  let index = new HashIndex<OperatorTokenRecord>([]);
  const tokens = () => {
    const records = opts.tokens();
    if (records !== index.records) index = new HashIndex(records);
    return index;
  };
  return function authorizeOperator(req: AuthRequest): Principal {
    const need = requiredRole(req.method, req.path);
    const fromPeer = principalFromPeer(req.peer);
    if (need.kind === "public" || need.kind === "join_token_or_cert") return fromPeer;
    let principal: Principal = fromPeer;
    if (req.authorization !== null) {
      const auth = authenticate(tokens(), req.authorization, clock());
      if (!auth.ok) {
        // Never the token itself: only why it failed.
        opts.log.warn("api call denied", {
          method: req.method,
          path: req.path,
          status: 401,
          reason: auth.reason,
          peer: req.peer?.uri,
        });
        throw auth.reason === "missing"
          ? new ApiError(401, "unauthenticated", "a bearer token is required for this route")
          : new ApiError(
            401,
            "invalid_token",
            `the bearer token is ${auth.reason === "expired" ? "expired" : "not valid"}`,
          );
      }
      principal = { kind: "operator", role: auth.record.role, tokenId: auth.record.id };
    }
    const d = authorizeRoute(need, principal);
    const who = principal.kind === "operator"
      ? { credential_id: principal.tokenId, role: principal.role }
      : principal.kind === "anonymous"
      ? {}
      : { peer: principal.spiffeId };
    if (!d.allowed) {
      opts.log.warn("api call denied", {
        method: req.method,
        path: req.path,
        status: d.status,
        ...who,
        reason: d.reason,
      });
      if (d.status === 401) {
        throw new ApiError(
          401,
          "unauthenticated",
          "a bearer token or a mesh client certificate is required for this route",
        );
      }
      const required = need.kind === "role" ? need.role : null;
      throw new ApiError(
        403,
        "forbidden",
        principal.kind === "operator"
          ? `token ${principal.tokenId} has role ${principal.role}; this route needs ${required}`
          : `${d.reason}`,
        principal.kind === "operator"
          ? { role: principal.role, required }
          : { principal: principal.kind, required },
      );
    }
    if (opts.auditAllowed) {
      opts.log.info("api call allowed", { method: req.method, path: req.path, ...who });
    }
    return principal;
  };
}
