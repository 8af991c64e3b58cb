/**
 * Authentication of the control API: join tokens (a proxy's first certificate), operator bearer
 * tokens with roles, and the route → requirement table. Everything is a pure function over
 * JSON-serializable record lists, so the lead replicates the lists through Raft.
 *
 * ```ts
 * const { secret, record } = createJoinToken({ service: "payments", ttlMs: 3_600_000, now });
 * // replicate `record`; print `secret` once.
 * const r = redeem(records, secret, now);   // { ok, record, usesLeft, records } | { ok:false, reason }
 *
 * const op = createOperatorToken({ name: "ci", role: "operator", now });
 * const auth = authenticate(opRecords, req.headers.get("authorization"), now);
 * const need = requiredRole("PUT", "/v1/resources");        // role operator
 * authorizeRoute(need, { kind: "operator", role: "read", tokenId: "…" }); // 403
 * ```
 *
 * Secrets look like `skn_join_…` / `skn_op_…` (the logger redacts `skn_…`); records store only
 * the SHA-256 hash, compared in constant time.
 * @module
 */
export * from "./secret.ts";
export * from "./join_token.ts";
export * from "./operator_token.ts";
export * from "./routes.ts";
