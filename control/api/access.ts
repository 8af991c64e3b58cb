/**
 * Who is calling: the effective peer (a forwarding control node may name the original caller),
 * the revocation check, the principal the configured authorizer derives, and the per-route
 * checks on it. The middleware runs before every route.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../../common/mod.ts";
import { parseSpiffeId, type SpiffeId } from "../../common/tls/mod.ts";
import { type ForwardedCaller, type Principal, principalFromPeer } from "../auth/mod.ts";
import { isRevoked } from "../ca/mod.ts";
import type { ApiEnv, ApiOptions } from "./api_env.ts";
import { FORWARDED_PEER_HEADER } from "./api_env.ts";
import type { ControlBackend } from "./backend.ts";
import { ApiError } from "./errors.ts";

/**
 * The identity to authorize as: the TLS peer, unless that peer is a control node forwarding
 * someone else's request, in which case the original caller named in
 * {@linkcode FORWARDED_PEER_HEADER}. The header from anyone but a control node is ignored.
 */
export function effectivePeer(
  tlsPeer: SpiffeId | null,
  claimed: string | undefined,
): SpiffeId | null {
  if (claimed === undefined || tlsPeer?.kind !== "control") return tlsPeer;
  if (claimed === "none") return null;
  const id = parseSpiffeId(claimed);
  if (!id || id.trustDomain !== tlsPeer.trustDomain) {
    throw new ApiError(
      400,
      "invalid_request",
      `header ${FORWARDED_PEER_HEADER}: not a SPIFFE id of trust domain ${tlsPeer.trustDomain}`,
    );
  }
  return id;
}

/**
 * Middleware that sets the request's `peer` and `principal`, refusing revoked peers (403) and
 * whatever `authorize` refuses.
 */
export function checkAccess(
  backend: ControlBackend,
  log: Logger,
  authorize: ApiOptions["authorize"],
): MiddlewareHandler<ApiEnv> {
  return async function checkAccess(c, next) {
    const peer = effectivePeer(c.env?.peer ?? null, c.req.header(FORWARDED_PEER_HEADER));
    // The TLS layer refuses revoked peers; a forwarded caller is checked here, against this
    // node's list, since the forwarding follower may not have applied the revocation yet.
    const ca = backend.state().ca();
    if (peer && ca && isRevoked(ca, peer.uri)) {
      log.warn("api call denied", {
        method: c.req.method,
        path: c.req.path,
        status: 403,
        reason: "revoked",
        peer: peer.uri,
      });
      throw new ApiError(403, "revoked", `${peer.uri} is revoked`);
    }
    c.set("peer", peer);
    const authorization = c.req.header("authorization") ?? null;
    let principal: Principal | void = undefined;
    if (authorize) {
      const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
      principal = await authorize({
        token: m?.[1] ?? null,
        authorization,
        method: c.req.method,
        path: c.req.path,
        peer,
      });
    }
    c.set("principal", principal ?? principalFromPeer(peer));
    await next();
  };
}

/** The original caller, as a write forwarded over the peer transport carries it. */
export function callerOf(c: Context<ApiEnv>): ForwardedCaller {
  const p = c.get("principal");
  return {
    peer: c.get("peer")?.uri ?? null,
    tokenId: p.kind === "operator" ? p.tokenId : null,
  };
}

/** 403 unless a proxy caller acts for its own service (operators may act for any). */
export function requireOwnService(c: Context<ApiEnv>, service: string, what: string): void {
  const p = c.get("principal");
  if (p.kind === "proxy" && p.service !== service) {
    throw new ApiError(
      403,
      "forbidden",
      `${p.spiffeId} may not ${what} instances of service ${service}, only of ${p.service}`,
      { principal: p.spiffeId, service },
    );
  }
}
