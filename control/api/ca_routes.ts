/**
 * The certificate authority routes under `/v1/ca`: the trust bundle, the seed export for new
 * control nodes, signing (a first certificate for a join token, or a renewal for the current
 * mesh certificate), rotation and revocation. The CA's private keys live in the replicated
 * state; these routes serve only certificates (docs/security.md), except the audited seed
 * export.
 * @module
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { registryString } from "../../config/mod.ts";
import { NameSchema } from "../registry/mod.ts";
import {
  activateRoot,
  beginRotation,
  caDigest,
  CaError,
  type CaState,
  distrustBlockers,
  distrustIntermediate,
  findRetiredIntermediate,
  finishRotation,
  installIntermediate,
  MAX_CSR_PEM_BYTES,
  publicCaView,
  rotateCa,
  signCsr,
  trustBundle,
} from "../ca/mod.ts";
import {
  bearerToken,
  isJoinTokenSecret,
  joinTokenIdentity,
  type Principal,
  redeem,
} from "../auth/mod.ts";
import { parseSpiffeId } from "../../common/tls/mod.ts";
import type { ApiCore } from "./api_core.ts";
import type { ApiEnv } from "./api_env.ts";
import { parseJsonBody, readBodyBytes } from "./body.ts";
import { ApiError } from "./errors.ts";
import { parseQuery, StaleQuery, validateBody } from "./params.ts";
import { tokenRefusal } from "./refusals.ts";

/** Longest join token accepted in a sign request (a real one is 52 characters). */
const _MAX_TOKEN_CHARS = 256;
/** Largest `POST /v1/ca/sign` body: a CSR of `MAX_CSR_PEM_BYTES`, a token and the JSON around. */
export const MAX_SIGN_BODY_BYTES = 16 * 1024;

const _SignBody = z.strictObject({
  csr: z.string().min(1).max(MAX_CSR_PEM_BYTES),
  token: z.string().min(1).max(_MAX_TOKEN_CHARS).optional(),
});
const _RevokeBody = z.strictObject({
  spiffe_id: z.string().min(1).max(512).optional(),
  service: NameSchema.optional(),
  reason: registryString(256).default(""),
});

/** Largest intermediate certificate or key accepted (either is under 1 KiB for P-256). */
const _MAX_INTERMEDIATE_PEM_CHARS = 16 * 1024;
const _RotateBody = z.strictObject({
  activate: z.boolean().default(false),
  intermediate_cert_pem: z.string().min(1).max(_MAX_INTERMEDIATE_PEM_CHARS).optional(),
  intermediate_key_pem: z.string().min(1).max(_MAX_INTERMEDIATE_PEM_CHARS).optional(),
});
const _ActivateBody = z.strictObject({ root_id: z.string().regex(/^[0-9a-f]{1,128}$/) });
const _DistrustBody = z.strictObject({
  /** The intermediate's id (hex SKI) or SHA-256 fingerprint (hex, colons optional). */
  intermediate: z.string().regex(/^[0-9A-Fa-f:]{1,200}$/),
  /** Distrust even while members still hold leaves from it (an emergency). */
  now: z.boolean().default(false),
});

/** Signs a CSR; the CA's refusals answer 403 (a revoked identity) or 400. */
async function _sign(
  ca: CaState,
  o: Parameters<typeof signCsr>[1],
): Promise<Awaited<ReturnType<typeof signCsr>>> {
  try {
    return await signCsr(ca, o);
  } catch (e) {
    if (e instanceof CaError) {
      throw new ApiError(e.code === "revoked" ? 403 : 400, e.code, e.message);
    }
    throw e;
  }
}

/** The answer to a signing request: the certificate, its CA and validity. */
function _certificateBody(signed: Awaited<ReturnType<typeof signCsr>>): Record<string, unknown> {
  return {
    certPem: signed.certPem,
    caPem: signed.caPem,
    spiffeId: signed.spiffeId,
    serial: signed.serial,
    notBefore: signed.notBefore,
    notAfter: signed.notAfter,
  };
}

/** The CA routes; certificates signed here live `leafTtlMs`. */
export function caRoutes(k: ApiCore, leafTtlMs: number): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const { backend, log, clock } = k;

  /** The CA, or 503 while the leader has not created it yet. */
  function requireCa() {
    const ca = backend.state().ca();
    if (!ca) {
      throw new ApiError(
        503,
        "no_ca",
        "the cluster has not created its certificate authority yet; retry shortly",
      );
    }
    return ca;
  }

  app.get("/v1/ca/roots", async (c) => {
    const q = parseQuery(c, StaleQuery);
    const fwd = await k.consistentRead(c, q.stale);
    if (fwd) return fwd;
    const ca = requireCa();
    // Public like the roots: every leaf it signs carries it in its chain.
    const i = ca.roots.find((r) => r.id === ca.activeRootId)?.intermediate;
    return c.json({
      trust_domain: ca.trustDomain,
      active_root_id: ca.activeRootId,
      roots: trustBundle(ca),
      intermediate: i === undefined
        ? null
        : { id: i.id, cert_pem: i.certPem, not_after: new Date(i.notAfter).toISOString() },
      // The ones rotated out, so an operator can name the one to distrust.
      retired_intermediates: (ca.retiredIntermediates ?? []).map((r) => ({
        id: r.id,
        fingerprint: r.fingerprint,
        not_after: new Date(r.notAfter).toISOString(),
        distrusted_at: r.distrustedAt === null ? null : new Date(r.distrustedAt).toISOString(),
      })),
    });
  });

  // The files a new control node needs (`skein ctl ca export-seed`): the active root and its
  // key. Admin only (the route table: POST /v1/ca/* but sign); every export leaves a log line.
  app.post("/v1/ca/export-seed", async (c) => {
    const bytes = await readBodyBytes(c.req.raw, k.limits.maxBodyBytes);
    if (bytes.byteLength > 0) validateBody(z.strictObject({}), parseJsonBody(bytes));
    const fwd = await k.consistentRead(c, false, 0, bytes);
    if (fwd) return fwd;
    const ca = requireCa();
    const root = ca.roots.find((r) => r.id === ca.activeRootId)!;
    const p = c.get("principal");
    log.warn("CA seed exported", {
      root_id: root.id,
      by: p.kind === "operator" ? `operator ${p.tokenId}` : p.kind,
    });
    // An offline root's key is not here: the export is the root certificate and intermediate.
    const i = root.intermediate;
    return c.json({
      trust_domain: ca.trustDomain,
      root_id: root.id,
      cert_pem: root.certPem,
      key_pem: root.keyPem ?? null,
      ...(i !== undefined
        ? { intermediate_cert_pem: i.certPem, intermediate_key_pem: i.keyPem }
        : {}),
    });
  });

  // Only the leader hears every proxy's report, so a follower forwards the question.
  app.get("/v1/ca/rotation", async (c) => {
    if (!backend.isLeader()) return await k.forward(c, null);
    const st = backend.rotationStatus?.() ?? null;
    if (st === null) throw new ApiError(503, "no_ca", "the cluster has no CA yet");
    return c.json(st);
  });

  app.post("/v1/ca/sign", async (c) => {
    // Read before any credential is checked (the join token is in it): no more than a CSR needs.
    const { bytes, value } = await k.body(c, MAX_SIGN_BODY_BYTES);
    const req = validateBody(_SignBody, value);
    const header = bearerToken(c.req.header("authorization"));
    const token = req.token ?? (header && isJoinTokenSecret(header) ? header : null);
    if (!token) {
      const p = c.get("principal");
      if (p.kind === "proxy" || p.kind === "control") return await renew(c, bytes, req.csr, p);
      throw new ApiError(
        401,
        "join_token_required",
        "a join token (body.token) is required to obtain a first certificate, or the current " +
          "mesh certificate as client certificate to renew it",
      );
    }
    // Only the leader's token records are authoritative; it checks, signs, then commits the
    // use, so a refused CSR does not spend a single-use token.
    if (!backend.isLeader()) return await k.forward(c, bytes);
    const fwd = await k.consistentRead(c, false, 0, bytes);
    if (fwd) return fwd;
    const ca = requireCa();
    const now = clock();
    const check = redeem(backend.state().joinTokens(), token, now);
    if (!check.ok) {
      // A replayed single-use token can mean a stolen one: every refusal is audited.
      log.warn("join token refused", {
        reason: check.reason,
        remote: c.env?.remoteAddr?.hostname ?? "unknown",
      });
      throw tokenRefusal(check.reason);
    }
    const signed = await _sign(ca, {
      csrPem: req.csr,
      identity: joinTokenIdentity(check.record),
      now,
      ttlMs: leafTtlMs,
    });
    const r = await k.commit(c, bytes, { type: "consume_join_token", id: check.record.id, now });
    if (r instanceof Response) return r;
    log.info("certificate issued", {
      spiffe_id: signed.spiffeId,
      serial: signed.serial,
      not_after: new Date(signed.notAfter).toISOString(),
      join_id: check.record.id,
    });
    return c.json(_certificateBody(signed));
  });

  /**
   * Renewal: the identity is the verified client certificate's, never the CSR's. Any node holding
   * the CA can sign, but only after a read barrier, so a revocation committed a moment ago is
   * seen (signCsr refuses revoked identities with 403).
   */
  async function renew(
    c: Context<ApiEnv>,
    bytes: Uint8Array<ArrayBuffer>,
    csrPem: string,
    p: Extract<Principal, { kind: "proxy" | "control" }>,
  ): Promise<Response> {
    const fwd = await k.consistentRead(c, false, 0, bytes);
    if (fwd) return fwd;
    const ca = requireCa();
    if (!p.spiffeId.startsWith(`spiffe://${ca.trustDomain}/`)) {
      throw new ApiError(
        403,
        "forbidden",
        `${p.spiffeId} is not of trust domain ${ca.trustDomain}`,
      );
    }
    // The certificate's own id decides (a gateway's proxy principal is `gateway/<name>`).
    const held = parseSpiffeId(p.spiffeId);
    if (held === null) throw new ApiError(403, "forbidden", `${p.spiffeId} is no mesh identity`);
    const signed = await _sign(ca, {
      csrPem,
      identity: held,
      now: clock(),
      ttlMs: leafTtlMs,
    });
    log.info("certificate renewed", {
      spiffe_id: signed.spiffeId,
      serial: signed.serial,
      not_after: new Date(signed.notAfter).toISOString(),
    });
    return c.json(_certificateBody(signed));
  }

  // One CA change at a time on this node, so concurrent operator calls queue instead of failing
  // each other's compare-and-set; across nodes and leader changes the digest CAS decides.
  let caLock: Promise<void> = Promise.resolve();

  /**
   * Computes the next CA state on the leader with `f` and commits it as `put_ca` with a
   * compare-and-set on the current active root; answers the public view (never keys).
   */
  async function changeCa(
    c: Context<ApiEnv>,
    bytes: Uint8Array<ArrayBuffer> | null,
    what: string,
    f: (ca: CaState, now: number) => CaState | Promise<CaState>,
  ): Promise<Response> {
    if (!backend.isLeader()) return await k.forward(c, bytes);
    const prev = caLock;
    let release = () => {};
    caLock = new Promise<void>((r) => release = r);
    await prev;
    try {
      const fwd = await k.consistentRead(c, false, 0, bytes);
      if (fwd) return fwd;
      const ca = requireCa();
      let next: CaState;
      try {
        next = await f(ca, clock());
      } catch (e) {
        if (e instanceof CaError) {
          throw new ApiError(
            _caErrorStatus(e.code),
            e.code,
            e.message,
          );
        }
        throw e;
      }
      if (next === ca) {
        return c.json({ index: backend.state().index, changed: false, ca: publicCaView(ca) });
      }
      const r = await k.commit(c, bytes, {
        type: "put_ca",
        ca: next as unknown as Record<string, unknown>,
        expect_root_id: ca.activeRootId,
        expect_digest: caDigest(ca),
      });
      if (r instanceof Response) return r;
      const view = publicCaView(next);
      log.info("certificate authority changed", {
        change: what,
        active_root_id: view.activeRootId,
        trusted_roots: view.roots.map((x) => x.id).join(","),
        ...(view.roots[0]?.intermediate !== undefined
          ? { intermediate: view.roots[0].intermediate.id }
          : {}),
      });
      return c.json({ index: r.index, changed: true, ca: view });
    } finally {
      release();
    }
  }

  app.post("/v1/ca/rotate", async (c) => {
    const { bytes, value } = await k.body(c);
    const req = validateBody(_RotateBody, value);
    const cert = req.intermediate_cert_pem;
    const key = req.intermediate_key_pem;
    if (cert !== undefined || key !== undefined) {
      if (cert === undefined || key === undefined || req.activate) {
        throw new ApiError(
          400,
          "invalid_request",
          "body: a new intermediate needs both intermediate_cert_pem and intermediate_key_pem, " +
            "and no activate",
        );
      }
      // Checked against the trusted root before anything is committed (installIntermediate).
      return await changeCa(
        c,
        bytes,
        "rotate intermediate",
        (ca, now) => installIntermediate(ca, { certPem: cert, keyPem: key, now }),
      );
    }
    return await changeCa(
      c,
      bytes,
      "rotate",
      // Without `activate` the leader carries the rotation through (control/ca/rotation.ts).
      (ca, now) =>
        req.activate === true
          ? rotateCa(ca, { now, activate: true })
          : beginRotation(ca, { now, trigger: "operator" }),
    );
  });

  app.post("/v1/ca/activate", async (c) => {
    const { bytes, value } = await k.body(c);
    const req = validateBody(_ActivateBody, value);
    return await changeCa(c, bytes, "activate", (ca) => {
      if (ca.activeRootId === req.root_id) return ca;
      if (!ca.roots.some((r) => r.id === req.root_id)) {
        throw new ApiError(404, "not_found", `root ${req.root_id} is not trusted`, {
          trusted: ca.roots.map((r) => r.id),
        });
      }
      return activateRoot(ca, req.root_id, clock());
    });
  });

  app.post("/v1/ca/finish", async (c) => {
    // The body is optional; when sent it must be an empty object.
    const bytes = await readBodyBytes(c.req.raw, k.limits.maxBodyBytes);
    if (bytes.byteLength > 0) validateBody(z.strictObject({}), parseJsonBody(bytes));
    return await changeCa(c, bytes, "finish", (ca) => finishRotation(ca));
  });

  // Distrusting breaks every leaf the intermediate signed, so by default it waits until no
  // member holds one (docs/security.md, "Distrusting a rotated-out intermediate").
  app.post("/v1/ca/distrust-intermediate", async (c) => {
    const { bytes, value } = await k.body(c);
    const req = validateBody(_DistrustBody, value);
    return await changeCa(c, bytes, "distrust intermediate", (ca, now) => {
      const target = findRetiredIntermediate(ca, req.intermediate, now);
      if (!req.now && target.distrustedAt === null) {
        const left = backend.membersOnIntermediate?.(target.fingerprint) ?? ["(unknown)"];
        const why = distrustBlockers({
          intermediateId: target.id,
          members: left,
          // A leaf it signed before it was rotated out lives at most one leaf lifetime, and
          // connections made with it end when it expires: past that, distrust cuts nothing.
          leavesValidUntil: target.retiredAt + leafTtlMs,
          now,
        });
        if (why !== null) throw new CaError("intermediate_in_use", why);
      }
      return distrustIntermediate(ca, target.id, now);
    });
  });

  app.post("/v1/ca/revoke", async (c) => {
    const { bytes, value } = await k.body(c);
    const req = validateBody(_RevokeBody, value);
    if ((req.spiffe_id === undefined) === (req.service === undefined)) {
      throw new ApiError(400, "invalid_request", "body: give exactly one of spiffe_id and service");
    }
    const spiffeId = req.spiffe_id ??
      `spiffe://${backend.state().ca()?.trustDomain ?? "unknown"}/svc/${req.service}`;
    const r = await k.commit(c, bytes, {
      type: "revoke_identity",
      spiffe_id: spiffeId,
      now: clock(),
      reason: req.reason,
    });
    if (r instanceof Response) return r;
    if (r.value.type !== "revoke_identity") throw new Error("apply result does not match command");
    return c.json({ index: r.index, spiffe_id: r.value.spiffeId, changed: r.value.changed });
  });

  return app;
}

/** The HTTP status of a refused CA change: a conflict with the state, else bad input. */
function _caErrorStatus(code: CaError["code"]): 400 | 404 | 409 {
  switch (code) {
    case "rotation_in_progress":
    case "root_offline":
    case "intermediate_active":
    case "intermediate_in_use":
      return 409;
    case "unknown_intermediate":
      return 404;
    default:
      return 400;
  }
}
