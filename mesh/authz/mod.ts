/**
 * Authorization at a proxy's inbound side (SPEC sections 4 and 5): compile each
 * `Authorization` resource once, evaluate every request against the caller's verified SPIFFE
 * id, answer denials with a 403 that says why, and write audit lines.
 *
 * ```ts
 * const policy = compileAuthorization(resource, { trustDomain: "skein.local" });
 * const d = evaluate(policy, { caller: peer.spiffeId, method: "POST", path: "/charge?x=1" });
 * if (shouldAudit(policy, d)) auditSink(auditLine({ time: Date.now(), caller: peer.spiffeId.uri,
 *   service: "ledger", method: "POST", path: "/charge", decision: d }));
 * if (!d.allowed) socket.write(deniedHttp1(d, { proxyNode: "vm-12" }));
 * ```
 *
 * Rule semantics: `deny` rules first, then `allow`, then `default`. `from`: `*`, a service name
 * of the mesh's trust domain, or a SPIFFE id (both may use `*`). `methods`: written in any case,
 * matched against the request's method exactly for `allow` (RFC 9110: `get` is not `GET`) and
 * in any spelling for `deny`; omitted or `*` for any. `paths`: exact, `/x/*` (x and below), `*` (one segment), `**` (any);
 * matched against the normalized path (query dropped, dot segments resolved), which the proxy
 * should also forward so the app sees what was authorized (`evaluateNormalized` takes the
 * path already normalized, so the proxy normalizes once). Opaque TCP (`evaluateTcp`) is
 * allowed only when the caller would be allowed every request: any `deny` rule naming it
 * denies, an `allow` rule naming it without `methods`/`paths` allows, else the default.
 *
 * `InboundAuthz` (`inbound.ts`) is that evaluation on the proxy's `inbound` listener: the
 * local services' policies, compiled once per catalog change, checked before routing.
 * @module
 */
export * from "./path.ts";
export * from "./authz.ts";
export * from "./response.ts";
export * from "./inbound.ts";
