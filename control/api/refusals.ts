/**
 * How refusals of the registry and the join-token check become HTTP errors: one place that
 * maps a refused command's code to its status, so every route answers alike.
 * @module
 */
import type { RedeemRefusal } from "../auth/mod.ts";
import type { ApplyResult } from "../registry/mod.ts";
import { ApiError, type ErrorStatus } from "./errors.ts";

/** Status of a refused join token: unknown is unauthenticated, spent or expired is forbidden. */
export function tokenRefusal(reason: RedeemRefusal): ApiError {
  switch (reason) {
    case "unknown":
      return new ApiError(401, "join_token_unknown", "join token is not valid for this cluster");
    case "expired":
      return new ApiError(403, "join_token_expired", "join token has expired; create a new one");
    case "used_up":
      return new ApiError(
        403,
        "join_token_used_up",
        "join token has no uses left (already used); create a new one",
      );
  }
}

/** Maps a refused command to its HTTP error. */
export function applyError(r: Extract<ApplyResult, { ok: false }>): ApiError {
  switch (r.error.code) {
    case "join_token_unknown":
    case "join_token_expired":
    case "join_token_used_up": {
      // The applied result is authoritative (a concurrent redeem may have won the last use).
      const e = tokenRefusal(r.error.code.slice("join_token_".length) as RedeemRefusal);
      return new ApiError(e.status, e.code, e.message, { index: r.index });
    }
    case "no_ca":
      return new ApiError(503, "no_ca", r.error.message, { index: r.index });
  }
  const status: ErrorStatus = r.error.code === "invalid_command" ||
      r.error.code === "invalid_identity" || r.error.code === "invalid_ca"
    ? 400
    : r.error.code === "not_found" || r.error.code === "revision_not_found"
    ? 404
    : r.error.code === "catalog_budget"
    ? 413
    : 409;
  return new ApiError(status, r.error.code, r.error.message, { index: r.index });
}
