/**
 * The control HTTP API (SPEC section 2) as a Hono app over a {@linkcode ControlBackend}.
 *
 * Writes go through Raft on the leader; a follower forwards them. Reads are linearizable unless
 * `?stale=true`. Every wait is bounded: writes and read barriers by `writeTimeoutMs`, forwarding
 * by `forwardTimeoutMs`, blocking queries by `maxWaitMs`.
 * @module
 */
import { type Context, Hono } from "hono";
import { matchedRoutes } from "hono/route";
import { z } from "zod";
import {
  controlCharPath,
  didYouMean,
  parseDuration,
  registryString,
  RESOURCE_KINDS,
  resourceName,
  WritableResourceSchema,
} from "../../config/mod.ts";
import { type Logger, nullLogger } from "../../common/mod.ts";
import { parseSpiffeId, type SpiffeId } from "../../common/tls.ts";
import {
  type ApplyResult,
  HealthSchema,
  MAX_INSTANCES_PER_PROXY_IDENTITY,
  MAX_RESOURCES_PER_COMMAND,
  NameSchema,
  type Registration,
  RegistrationSchema,
  type RegistryCommand,
  RegistryCommandSchema,
  type StoredResource,
  TooManyWatchersError,
  type ValidatedCommand,
} from "../registry/mod.ts";
import {
  activateRoot,
  beginRotation,
  caDigest,
  CaError,
  type CaState,
  finishRotation,
  isRevoked,
  LEAF_TTL_MS_DEFAULT,
  MAX_CSR_PEM_BYTES,
  publicCaView,
  rotateCa,
  signCsr,
  trustBundle,
} from "../ca/mod.ts";
import {
  bearerToken,
  createJoinToken,
  createOperatorToken,
  type ForwardedCaller,
  isJoinTokenSecret,
  JOIN_TOKEN_USES_MAX,
  type Principal,
  principalFromPeer,
  publicJoinToken,
  publicOperatorToken,
  redeem,
  type RedeemRefusal,
  ROLES,
} from "../auth/mod.ts";
import { BackendError, type ControlBackend, type Member, NotLeaderError } from "./backend.ts";
import { MAX_BODY_BYTES, parseJsonBody, readBodyBytes } from "./body.ts";
import { ProxyReports, ProxyReportSchema } from "./proxy_reports.ts";
import { DeadlineExceeded, SharedDeadlines } from "./deadline.ts";
import { ApiError, type ErrorStatus, validationError } from "./errors.ts";
import { ApiMetrics, renderControlMetrics } from "./metrics.ts";
import { CATALOG_DELTA_HEADER, CatalogFeed } from "./catalog_feed.ts";
import { WriteRate } from "./write_rate.ts";
import { type ApiTracing, traceApiCalls } from "./tracing.ts";
import type { DashboardWindow } from "../dashboard/window.ts";
import { HeartbeatStatsSchema } from "../dashboard/stats_schema.ts";
import { dashboardRoutes } from "../dashboard/routes.ts";

/** How long a write may wait for commit before the API answers 503 `no_quorum`. */
export const WRITE_TIMEOUT_MS = 5_000;
/** How long a linearizable read may wait for its barrier before 503 `no_quorum`. */
export const READ_TIMEOUT_MS = 5_000;
/** How long a forwarded request may take, above the leader's own write timeout. */
export const FORWARD_TIMEOUT_MS = 8_000;
/** Blocking query wait when `index` is given without `wait`. */
export const DEFAULT_BLOCKING_WAIT_MS = 30_000;
/** Longest blocking query wait; larger `wait` values are capped. */
export const MAX_BLOCKING_WAIT_MS = 300_000;
/** Most instances in one heartbeat batch. */
export const MAX_HEARTBEAT_ITEMS = 1_000;
/** Header a forwarding node adds; a non-leader receiving it answers 503 instead of forwarding again. */
export const FORWARD_HEADER = "x-skein-forwarded-by";
/**
 * Header in which a forwarding control node names the original caller's verified SPIFFE id
 * (`none` without one). Honoured only when the TLS peer is itself a control node; from anyone
 * else it is ignored, so a client cannot claim an identity.
 */
export const FORWARDED_PEER_HEADER = "x-skein-forwarded-peer";
/** Header carrying the catalog index on read responses. */
export const INDEX_HEADER = "X-Skein-Index";

/** Limits read on every request, so a configuration reload can change them. */
export interface ApiLimits {
  maxBodyBytes: number;
  writeTimeoutMs: number;
  readTimeoutMs: number;
}

/** Options of {@linkcode createApi}. */
export interface ApiOptions {
  /** Structured logger. @default nullLogger */
  logger?: Logger;
  /** The skein version this node runs, shown in `/v1/health` (for version skew checks). */
  version?: string;
  /**
   * Live limits (the caller may change them later); when given they win over `maxBodyBytes`,
   * `writeTimeoutMs` and `readTimeoutMs`.
   */
  limits?: ApiLimits;
  /** Request body limit in bytes. @default MAX_BODY_BYTES */
  maxBodyBytes?: number;
  /** Commit timeout of writes. @default WRITE_TIMEOUT_MS */
  writeTimeoutMs?: number;
  /** Barrier timeout of linearizable reads. @default READ_TIMEOUT_MS */
  readTimeoutMs?: number;
  /** Timeout of a forwarded request. @default FORWARD_TIMEOUT_MS */
  forwardTimeoutMs?: number;
  /** Cap of blocking query waits. @default MAX_BLOCKING_WAIT_MS */
  maxWaitMs?: number;
  /** Fetch used to forward to the leader, injectable for tests. @default globalThis.fetch */
  fetch?: (req: Request) => Promise<Response>;
  /** Counters shared with `/metrics`. @default a new ApiMetrics */
  metrics?: ApiMetrics;
  /**
   * Checks the caller before any route runs; throw an {@linkcode ApiError} (401/403) to refuse,
   * return the caller's {@linkcode Principal} (else it is derived from the certificate alone).
   * Forwarded requests keep their `Authorization` header and name the original certificate in
   * {@linkcode FORWARDED_PEER_HEADER}, so the leader checks again.
   * @default allow everything (until tokens exist)
   */
  authorize?: (req: AuthRequest) => Principal | void | Promise<Principal | void>;
  /** Wall clock for token expiry and certificate validity, ms since the epoch. @default Date.now */
  now?: () => number;
  /** Lifetime of certificates signed by `POST /v1/ca/sign`. @default LEAF_TTL_MS_DEFAULT */
  leafTtlMs?: number;
  /** Traces API calls (a server span each) when given. */
  tracing?: ApiTracing;
  /** Keeps the proxies' heartbeat reports and serves `/ui/` and `/v1/dashboard` when given. */
  dashboard?: DashboardWindow;
}

/** The facts {@linkcode ApiOptions.authorize} decides on. */
export interface AuthRequest {
  /** Bearer token from `Authorization`, or null. */
  token: string | null;
  /** The raw `Authorization` header, or null. */
  authorization: string | null;
  /** HTTP method. */
  method: string;
  /** Request path. */
  path: string;
  /**
   * The caller's verified client certificate identity: from the TLS layer, or for a request a
   * control node forwarded, the original caller's. Null without a certificate.
   */
  peer: SpiffeId | null;
}

/**
 * What the HTTPS server hands to `app.fetch(req, info)` (Hono bindings): the TLS peer. Absent
 * when the app runs without {@linkcode serveApiHttps} (tests, plaintext), which means no peer.
 */
export interface ApiBindings {
  /** The verified client certificate identity of the connection, or null. */
  peer?: SpiffeId | null;
  /** The client's address. */
  remoteAddr?: { hostname: string; port: number };
}

/** The Hono environment of the control API. */
export type ApiEnv = {
  Bindings: ApiBindings;
  Variables: { peer: SpiffeId | null; principal: Principal };
};

class _Timeout extends Error {}

/** Races `p` against a timer; on timeout aborts `ac` and throws `_Timeout`. */
async function _bounded<T>(p: Promise<T>, ms: number, ac: AbortController): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(new _Timeout());
    }, ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

const _flag = z.enum(["true", "false", "1", "0", ""]).optional().transform((v) =>
  v === undefined ? undefined : v === "true" || v === "1" || v === ""
);
const _uint = z.string().regex(/^\d{1,15}$/, "expected a non-negative integer").transform(Number);

const _StaleQuery = z.strictObject({ stale: _flag });
const _InstancesQuery = z.strictObject({
  stale: _flag,
  healthy: _flag,
  zone: z.string().max(128).optional(),
  capability: z.string().max(256).optional(),
});
const _CatalogQuery = z.strictObject({
  stale: _flag,
  index: _uint.optional(),
  wait: z.string().max(32).optional(),
});
const _ResourcesQuery = z.strictObject({ stale: _flag, kind: z.string().max(64).optional() });
/** A certificate fingerprint as `X509Certificate.fingerprint256` writes it. */
const _Fingerprint = z.string().regex(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
const _HeartbeatBody = z.strictObject({
  instances: z.array(z.strictObject({
    service: NameSchema,
    id: NameSchema,
    health: HealthSchema.optional(),
  })).min(1).max(MAX_HEARTBEAT_ITEMS),
  /** What the proxy says about itself, for `skein ctl check`. */
  proxy: ProxyReportSchema.optional(),
  // What the proxy holds, so a CA rotation knows when every proxy trusts the new root and
  // when every leaf comes from it.
  trust: z.strictObject({
    roots: z.array(_Fingerprint).max(8),
    leaf_root: _Fingerprint.nullable(),
  }).optional(),
  /** The dashboard report; checked on its own, so a bad one never fails the heartbeat. */
  stats: z.unknown().optional(),
});
const _MemberBody = z.strictObject({
  node: NameSchema,
  address: z.string().regex(/^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$/, 'expected "host:port"'),
  // Followers forward callers' tokens to this address: never in clear.
  api: z.url().max(256).refine((u) => u.startsWith("https://"), {
    message: "expected an https:// URL",
  }).nullable().optional(),
  voter: z.boolean().optional(),
});
const _RollbackBody = z.strictObject({ revision: z.number().int().min(1) });
/** Longest join token accepted in a sign request (a real one is 52 characters). */
const _MAX_TOKEN_CHARS = 256;
/**
 * Largest registration body. A real one is well under 2 KiB; the schema's own bounds (64 tags,
 * capabilities and meta entries of 256 characters) would allow hundreds of KiB per instance,
 * copied into every node, the log and every proxy's catalog.
 */
export const MAX_REGISTRATION_BODY_BYTES = 32 * 1024;

/**
 * Blocking catalog queries one client address may have waiting on a node at once, unless the
 * caller is a proxy with its mesh certificate (proxies behind one NAT share an address).
 */
export const MAX_WATCHERS_PER_ADDRESS = 256;

/** Largest `POST /v1/ca/sign` body: a CSR of `MAX_CSR_PEM_BYTES`, a token and the JSON around. */
export const MAX_SIGN_BODY_BYTES = 16 * 1024;

const _SignBody = z.strictObject({
  csr: z.string().min(1).max(MAX_CSR_PEM_BYTES),
  token: z.string().min(1).max(_MAX_TOKEN_CHARS).optional(),
});
const _TokenBody = z.strictObject({
  service: NameSchema,
  ttl: z.string().max(32).default("1h"),
  uses: z.number().int().min(1).max(JOIN_TOKEN_USES_MAX).default(1),
});
const _OperatorTokenBody = z.strictObject({
  role: z.enum(ROLES),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/).default("operator"),
  ttl: z.string().max(32).optional(),
});
const _RevokeBody = z.strictObject({
  spiffe_id: z.string().min(1).max(512).optional(),
  service: NameSchema.optional(),
  reason: registryString(256).default(""),
});

/**
 * The identity to authorize as: the TLS peer, unless that peer is a control node forwarding
 * someone else's request, in which case the original caller named in
 * {@linkcode FORWARDED_PEER_HEADER}. The header from anyone but a control node is ignored.
 */
function _effectivePeer(tlsPeer: SpiffeId | null, claimed: string | undefined): SpiffeId | null {
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

const _RotateBody = z.strictObject({ activate: z.boolean().default(false) });
const _ActivateBody = z.strictObject({ root_id: z.string().regex(/^[0-9a-f]{1,128}$/) });

/** Status of a refused join token: unknown is unauthenticated, spent or expired is forbidden. */
function _tokenRefusal(reason: RedeemRefusal): ApiError {
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
function _applyError(r: Extract<ApplyResult, { ok: false }>): ApiError {
  switch (r.error.code) {
    case "join_token_unknown":
    case "join_token_expired":
    case "join_token_used_up": {
      // The applied result is authoritative (a concurrent redeem may have won the last use).
      const e = _tokenRefusal(r.error.code.slice("join_token_".length) as RedeemRefusal);
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

/** Canonical spelling of a resource kind (case-insensitive), or a 400 with a suggestion. */
function _kind(raw: string): string {
  const k = RESOURCE_KINDS.find((x) => x.toLowerCase() === raw.toLowerCase());
  if (k) return k;
  const hint = didYouMean(raw, RESOURCE_KINDS);
  throw new ApiError(
    400,
    "unknown_kind",
    `unknown resource kind ${JSON.stringify(raw)}${hint ? `; did you mean ${hint}?` : ""}`,
    { kinds: [...RESOURCE_KINDS] },
  );
}

function _name(where: string, raw: string): string {
  const r = NameSchema.safeParse(raw);
  if (!r.success) throw validationError(where, r.error.issues);
  return r.data;
}

/** Validates a `PUT /v1/resources` body (one resource or a list) into stored resources. */
export function parseResourceBody(value: unknown): StoredResource[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) {
    throw new ApiError(400, "invalid_request", "body: expected at least one resource");
  }
  if (list.length > MAX_RESOURCES_PER_COMMAND) {
    throw new ApiError(
      400,
      "too_many_resources",
      `body: ${list.length} resources, more than the limit of ${MAX_RESOURCES_PER_COMMAND} per request`,
      { limit: MAX_RESOURCES_PER_COMMAND },
    );
  }
  const out: StoredResource[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const raw = list[i];
    const prefix = Array.isArray(value) ? [i] : [];
    const bad = controlCharPath(raw);
    if (bad !== null) {
      throw new ApiError(
        400,
        "invalid_request",
        `body${prefix.length ? `[${i}]` : ""}.${bad}: must not contain control characters`,
      );
    }
    const r = WritableResourceSchema.safeParse(raw);
    if (!r.success) throw validationError("body", r.error.issues, prefix);
    const name = resourceName(r.data);
    const key = `${r.data.kind}/${name}`;
    if (seen.has(key)) {
      throw new ApiError(400, "duplicate_resource", `body: ${key} appears more than once`, {
        resource: key,
      });
    }
    seen.add(key);
    // Stored as sent (validated, not transformed): durations stay "2s", so what `get` returns
    // can be applied again, and consumers parse it with ResourceSchema themselves.
    out.push({ kind: r.data.kind, name, resource: raw as Record<string, unknown> });
  }
  return out;
}

/**
 * The `register_instance` command for a validated registration body and validated path names;
 * equal to what {@linkcode RegistryCommandSchema} would output for it.
 */
export function registerCommand(
  reg: Registration,
  service: string,
  id: string,
  identityQuota?: number,
): ValidatedCommand {
  const { id: _id, service: _service, ...fields } = reg;
  // Same key order as the schema's output (id, service, fields), so every node stores alike.
  const instance = { id, service, ...fields };
  return (identityQuota === undefined
    ? { type: "register_instance", instance }
    : { type: "register_instance", instance, identity_quota: identityQuota }) as ValidatedCommand;
}

/** Creates the control API app. */
export function createApi(backend: ControlBackend, opts: ApiOptions = {}): Hono<ApiEnv> {
  const log = opts.logger ?? nullLogger;
  const limits: ApiLimits = opts.limits ?? {
    maxBodyBytes: opts.maxBodyBytes ?? MAX_BODY_BYTES,
    writeTimeoutMs: opts.writeTimeoutMs ?? WRITE_TIMEOUT_MS,
    readTimeoutMs: opts.readTimeoutMs ?? READ_TIMEOUT_MS,
  };
  const forwardTimeout = opts.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS;
  const maxWait = opts.maxWaitMs ?? MAX_BLOCKING_WAIT_MS;
  const doFetch = opts.fetch ?? ((req: Request) => fetch(req));
  const metrics = opts.metrics ?? new ApiMetrics();
  const clock = opts.now ?? Date.now;
  const leafTtlMs = opts.leafTtlMs ?? LEAF_TTL_MS_DEFAULT;

  // Writes share their commit timeout per bucket of time: one timer per bucket, not per write.
  let writeDeadlines = new SharedDeadlines(limits.writeTimeoutMs);
  let deadlinesMs = limits.writeTimeoutMs;
  /** A write's commit deadline; a reloaded timeout takes effect for the next writes. */
  const leaseDeadline = () => {
    if (deadlinesMs !== limits.writeTimeoutMs) {
      deadlinesMs = limits.writeTimeoutMs;
      writeDeadlines = new SharedDeadlines(deadlinesMs);
    }
    return writeDeadlines.lease();
  };

  const app = new Hono<ApiEnv>();
  const proxyReports = new ProxyReports();
  if (opts.tracing !== undefined) app.use("*", traceApiCalls(opts.tracing));

  app.use("*", async function countRequests(c, next) {
    await next();
    const routes = matchedRoutes(c);
    const route = routes.length > 1 ? routes.at(-1)?.path ?? "unmatched" : "unmatched";
    metrics.countRequest(c.req.method, route, c.res.status);
  });

  const authorize = opts.authorize;
  app.use("*", async function checkAccess(c, next) {
    const peer = _effectivePeer(c.env?.peer ?? null, c.req.header(FORWARDED_PEER_HEADER));
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
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(err.body(), err.status);
    if (err instanceof BackendError) {
      return c.json({ error: { code: err.code, message: err.message, details: {} } }, err.status);
    }
    log.error("control api request failed", { method: c.req.method, path: c.req.path, err: err });
    return c.json(
      {
        error: {
          code: "internal",
          message: "internal error; see the control node log",
          details: {},
        },
      },
      500,
    );
  });

  app.notFound((c) =>
    c.json({
      error: {
        code: "not_found",
        message: `no route ${c.req.method} ${c.req.path}`,
        details: {},
      },
    }, 404)
  );

  function query<S extends z.ZodType>(c: Context<ApiEnv>, schema: S): z.infer<S> {
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.req.queries())) raw[k] = v[0] ?? "";
    const r = schema.safeParse(raw);
    if (!r.success) throw validationError("query", r.error.issues);
    return r.data;
  }

  async function body(
    c: Context<ApiEnv>,
    limit = limits.maxBodyBytes,
  ): Promise<{ bytes: Uint8Array<ArrayBuffer>; value: unknown }> {
    const bytes = await readBodyBytes(c.req.raw, Math.min(limit, limits.maxBodyBytes));
    return { bytes, value: parseJsonBody(bytes) };
  }

  function validate<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
    const r = schema.safeParse(value);
    if (!r.success) throw validationError("body", r.error.issues);
    return r.data;
  }

  /** Sends the request to the leader's API once; loops end at the first non-leader. */
  async function forward(
    c: Context<ApiEnv>,
    bytes: Uint8Array<ArrayBuffer> | null,
    extraMs = 0,
  ): Promise<Response> {
    const via = c.req.header(FORWARD_HEADER);
    if (via) {
      metrics.forwardFailures++;
      throw new ApiError(
        503,
        "no_leader",
        `request forwarded by ${via} reached ${backend.health().node}, which is not the leader either`,
        { forwarded_by: via },
      );
    }
    const leader = backend.leaderApi();
    if (!leader) {
      metrics.forwardFailures++;
      throw new ApiError(
        503,
        "no_leader",
        "no leader is known; the cluster may be electing one",
        {},
      );
    }
    const url = new URL(c.req.url);
    const target = leader.replace(/\/+$/, "") + url.pathname + url.search;
    const headers = new Headers({
      [FORWARD_HEADER]: backend.health().node,
      // The leader believes this only because our own client certificate says we are a control
      // node; it authorizes as the original caller, never as us.
      [FORWARDED_PEER_HEADER]: c.get("peer")?.uri ?? "none",
    });
    for (const h of ["content-type", "authorization", "accept"]) {
      const v = c.req.header(h);
      if (v) headers.set(h, v);
    }
    let res: Response;
    let payload: Uint8Array<ArrayBuffer>;
    try {
      res = await doFetch(
        new Request(target, {
          method: c.req.method,
          headers,
          body: bytes && bytes.byteLength > 0 ? bytes : undefined,
          redirect: "manual",
          signal: AbortSignal.timeout(forwardTimeout + extraMs),
        }),
      );
      payload = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      metrics.forwardFailures++;
      log.warn("forwarding to leader failed", { leader, path: url.pathname, err: e as Error });
      throw new ApiError(
        503,
        "leader_unreachable",
        `forwarding to the leader at ${leader} failed: ${(e as Error).message}`,
        { leader },
      );
    }
    metrics.forwarded++;
    const out = new Headers();
    for (const h of ["content-type", INDEX_HEADER]) {
      const v = res.headers.get(h);
      if (v) out.set(h, v);
    }
    out.set("x-skein-forwarded-to", leader);
    return new Response(payload, { status: res.status, headers: out });
  }

  /**
   * Null when this node may answer itself (after a read barrier, unless `stale`), else the
   * leader's answer to the same request (`bytes` is the body to forward, for POSTs).
   */
  async function consistentRead(
    c: Context<ApiEnv>,
    stale: boolean | undefined,
    extraMs = 0,
    bytes: Uint8Array<ArrayBuffer> | null = null,
  ) {
    if (stale) return null;
    const ac = new AbortController();
    try {
      await _bounded(backend.linearizableRead(ac.signal), limits.readTimeoutMs, ac);
      return null;
    } catch (e) {
      if (e instanceof NotLeaderError) return await forward(c, bytes, extraMs);
      if (e instanceof _Timeout) {
        const hint = c.req.method === "GET" ? "; retry or use ?stale=true" : "; retry";
        throw new ApiError(
          503,
          "no_quorum",
          `read barrier did not complete within ${limits.readTimeoutMs} ms${hint}`,
          { timeout_ms: limits.readTimeoutMs },
        );
      }
      throw e;
    }
  }

  /** The original caller, as a write forwarded over the peer transport carries it. */
  function callerOf(c: Context<ApiEnv>): ForwardedCaller {
    const p = c.get("principal");
    return {
      peer: c.get("peer")?.uri ?? null,
      tokenId: p.kind === "operator" ? p.tokenId : null,
    };
  }

  /** 403 unless a proxy caller acts for its own service (operators may act for any). */
  function requireOwnService(c: Context<ApiEnv>, service: string, what: string): void {
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

  /** Commits `cmd` (forwarding when not leader); a Response when the leader answered. */
  async function commit(
    c: Context<ApiEnv>,
    bytes: Uint8Array<ArrayBuffer> | null,
    cmd: RegistryCommand | { validated: ValidatedCommand },
  ): Promise<Response | Extract<ApplyResult, { ok: true }>> {
    // Checked here so an invalid command never enters the replicated log. The schema's output
    // (defaults filled in) is what enters the log, so the proposer may apply this very value
    // and every other node decodes the same one from the entry.
    let valid: ValidatedCommand;
    if ("validated" in cmd) valid = cmd.validated;
    else {
      const check = RegistryCommandSchema.safeParse(cmd);
      if (!check.success) throw validationError("body", check.error.issues);
      valid = check.data as ValidatedCommand;
    }
    // A request another node forwarded over HTTP must not hop again (forward() answers 503).
    if (c.req.header(FORWARD_HEADER) !== undefined && !backend.isLeader()) {
      return await forward(c, bytes);
    }
    const deadline = leaseDeadline();
    let r: ApplyResult;
    try {
      let proposed: Promise<ApplyResult>;
      try {
        proposed = backend.propose(valid, deadline.signal, callerOf(c));
      } catch (e) {
        // A synchronous refusal still goes through bound(), which releases the lease.
        proposed = Promise.reject(e);
      }
      r = await deadline.bound(proposed);
    } catch (e) {
      if (e instanceof NotLeaderError) return await forward(c, bytes);
      // The backend may answer the shared signal's abort before the race sees the deadline.
      if (e instanceof DeadlineExceeded || deadline.signal.aborted) {
        metrics.writeTimeouts++;
        throw new ApiError(
          503,
          "no_quorum",
          `write was not committed within ${limits.writeTimeoutMs} ms; no quorum of control nodes reachable`,
          { timeout_ms: limits.writeTimeoutMs },
        );
      }
      throw e;
    }
    if (!r.ok) throw _applyError(r);
    return r;
  }

  async function membership(
    c: Context<ApiEnv>,
    op: (signal: AbortSignal) => Promise<void>,
    bytes: Uint8Array<ArrayBuffer> | null,
  ) {
    if (!backend.isLeader()) return { forwarded: await forward(c, bytes) };
    const ac = new AbortController();
    try {
      await _bounded(op(ac.signal), limits.writeTimeoutMs, ac);
      return { forwarded: null };
    } catch (e) {
      if (e instanceof NotLeaderError) return { forwarded: await forward(c, bytes) };
      if (e instanceof _Timeout) {
        throw new ApiError(
          503,
          "no_quorum",
          `membership change was not committed within ${limits.writeTimeoutMs} ms`,
          { timeout_ms: limits.writeTimeoutMs },
        );
      }
      throw e;
    }
  }

  const withIndex = (c: Context<ApiEnv>) => {
    c.header(INDEX_HEADER, String(backend.state().index));
  };

  // --- cluster ---------------------------------------------------------------------------

  // `time` (this node's clock, ms) lets `skein ctl check` see clock skew between nodes.
  app.get("/v1/health", (c) =>
    c.json({
      ...backend.health(),
      time: clock(),
      ...(opts.version ? { version: opts.version } : {}),
    }));

  app.get("/v1/members", (c) => {
    query(c, _StaleQuery);
    return c.json({ members: backend.members() });
  });

  app.post("/v1/members", async (c) => {
    const { bytes, value } = await body(c);
    const m: Member = validate(_MemberBody, value);
    const r = await membership(c, (s) => backend.addMember(m, s), bytes);
    return r.forwarded ?? c.json({ member: m }, 201);
  });

  app.delete("/v1/members/:node", async (c) => {
    const node = _name("path.node", c.req.param("node"));
    // Only the leader's member list is authoritative; a follower forwards without judging.
    if (backend.isLeader() && !backend.members().some((m) => m.node === node)) {
      throw new ApiError(404, "not_found", `no member ${node}`, { node });
    }
    const r = await membership(c, (s) => backend.removeMember(node, s), null);
    return r.forwarded ?? c.json({ removed: node });
  });

  // --- services and instances -------------------------------------------------------------

  app.get("/v1/services", async (c) => {
    const q = query(c, _StaleQuery);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    withIndex(c);
    return c.json({ index: backend.state().index, services: backend.state().listServices() });
  });

  app.get("/v1/services/:name", async (c) => {
    const name = _name("path.name", c.req.param("name"));
    const q = query(c, _InstancesQuery);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    withIndex(c);
    const st = backend.state();
    return c.json({
      service: name,
      index: st.index,
      instances: st.instances(name, { healthy: q.healthy, zone: q.zone, capability: q.capability }),
    });
  });

  app.get("/v1/services/:name/instances/:id", async (c) => {
    const name = _name("path.name", c.req.param("name"));
    const id = _name("path.id", c.req.param("id"));
    const q = query(c, _StaleQuery);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    const inst = backend.state().instance(name, id);
    if (!inst) {
      throw new ApiError(404, "not_found", `no instance ${id} of service ${name}`, {
        service: name,
        id,
      });
    }
    withIndex(c);
    return c.json({ index: backend.state().index, instance: inst });
  });

  app.put("/v1/services/:name/instances/:id", async (c) => {
    const name = _name("path.name", c.req.param("name"));
    const id = _name("path.id", c.req.param("id"));
    const { bytes, value } = await body(c, MAX_REGISTRATION_BODY_BYTES);
    requireOwnService(c, name, "register");
    const reg = validate(RegistrationSchema, value);
    if (reg.service !== undefined && reg.service !== name) {
      throw new ApiError(
        400,
        "invalid_request",
        `body.service: ${reg.service} does not match the path's ${name}`,
      );
    }
    if (reg.id !== undefined && reg.id !== id) {
      throw new ApiError(
        400,
        "invalid_request",
        `body.id: ${reg.id} does not match the path's ${id}`,
      );
    }
    // Valid by construction: RegistrationSchema's output has exactly the instance fields with
    // their defaults, and service and id passed NameSchema, so the command schema is skipped
    // on this hottest route (a test pins the equivalence).
    // A proxy certificate registers the few instances it fronts: its writes carry a quota.
    limitProxyWrites(c);
    const quota = c.get("principal").kind === "proxy"
      ? MAX_INSTANCES_PER_PROXY_IDENTITY
      : undefined;
    const r = await commit(c, bytes, {
      validated: registerCommand(reg, name, id, quota),
    });
    if (r instanceof Response) return r;
    if (r.value.type !== "register_instance") {
      throw new Error("apply result does not match command");
    }
    return c.json(
      {
        index: r.index,
        created: r.value.created,
        changed: r.value.changed,
        instance: r.value.instance,
      },
      r.value.created ? 201 : 200,
    );
  });

  app.delete("/v1/services/:name/instances/:id", async (c) => {
    const name = _name("path.name", c.req.param("name"));
    const id = _name("path.id", c.req.param("id"));
    requireOwnService(c, name, "deregister");
    limitProxyWrites(c);
    const r = await commit(c, null, { type: "deregister_instance", service: name, id });
    if (r instanceof Response) return r;
    if (r.value.type !== "deregister_instance") {
      throw new Error("apply result does not match command");
    }
    return c.json({ index: r.index, instance: r.value.instance });
  });

  app.put("/v1/heartbeat", async (c) => {
    const { bytes, value } = await body(c);
    const hb = validate(_HeartbeatBody, value);
    for (const i of hb.instances) requireOwnService(c, i.service, "heartbeat");
    if (hb.stats !== undefined && opts.dashboard !== undefined) {
      // Kept by the node that hears it (a follower too), not replicated: it is a live view.
      const stats = HeartbeatStatsSchema.safeParse(hb.stats);
      if (!stats.success) {
        log.debug("dashboard report refused", { err: stats.error.issues[0]?.message });
      } else if (!_reportsOwnNode(backend, hb.instances, stats.data.node)) {
        // A proxy speaks for its own node only (the node its instances registered with).
        log.debug("dashboard report refused", { err: "node does not match the instances" });
      } else opts.dashboard.record(stats.data, clock());
    }
    if (!backend.isLeader()) return await forward(c, bytes);
    // Only registered instances get a lease: heartbeats for made-up ids would fill the lease
    // table, and an instance with no lease would never be marked critical.
    const st = backend.state();
    const known = hb.instances.filter((i) => st.instance(i.service, i.id));
    try {
      backend.heartbeat(known);
    } catch (e) {
      if (e instanceof NotLeaderError) return await forward(c, bytes);
      throw e;
    }
    // Only for registered instances: a made-up report would sit in the list for a day.
    if (hb.proxy && known.length > 0) {
      proxyReports.record(hb.proxy, known.map((i) => i.service), clock());
    }
    if (hb.trust !== undefined && known.length > 0) {
      backend.reportTrust?.(known, { roots: hb.trust.roots, leafRoot: hb.trust.leaf_root });
    }
    const unknown = hb.instances
      .filter((i) => !st.instance(i.service, i.id))
      .map((i) => ({ service: i.service, id: i.id }));
    return c.json({ accepted: known.length, unknown });
  });

  // The leader takes the heartbeats, so it holds the reports; others ask it.
  app.get("/v1/proxies", async (c) => {
    if (!backend.isLeader()) return await forward(c, null);
    return c.json({ now: clock(), proxies: proxyReports.list(clock()) });
  });

  /** Registry writes of proxy identities, rate-limited per identity. */
  const proxyWrites = new WriteRate();
  metrics.proxyWrites = proxyWrites;
  /** Refuses a proxy's write over its rate with 429 `too_many_writes` and `Retry-After`. */
  function limitProxyWrites(c: Context<ApiEnv>): void {
    const peer = c.get("peer");
    if (c.get("principal").kind !== "proxy" || !peer) return;
    const now = clock();
    if (proxyWrites.take(peer.uri, now)) return;
    const retryMs = proxyWrites.retryAfterMs(peer.uri, now);
    c.header("retry-after", String(Math.max(1, Math.ceil(retryMs / 1000))));
    throw new ApiError(
      429,
      "too_many_writes",
      `${peer.uri} registers or deregisters more than ${proxyWrites.perSecond} times a second`,
      { limit: proxyWrites.perSecond, retry_after_ms: retryMs },
    );
  }

  // --- catalog ----------------------------------------------------------------------------

  app.get("/v1/catalog", async (c) => {
    const q = query(c, _CatalogQuery);
    let waitMs = DEFAULT_BLOCKING_WAIT_MS;
    if (q.wait !== undefined) {
      const ms = parseDuration(q.wait);
      if (ms === null) {
        throw new ApiError(
          400,
          "invalid_request",
          `query.wait: expected a duration like "30s", got ${JSON.stringify(q.wait)}`,
          {
            issues: [{ path: "wait", message: 'expected a duration like "30s"' }],
          },
        );
      }
      waitMs = ms;
    }
    waitMs = Math.min(waitMs, maxWait);
    const blocking = q.index !== undefined;
    const fwd = await consistentRead(c, q.stale, blocking ? waitMs : 0);
    if (fwd) return fwd;
    if (blocking && backend.state().index <= q.index!) {
      // One host may hold only so many of the node's watcher slots; a follower forwarding its
      // clients' queries (a control principal) is not one host, nor are proxies with their mesh
      // certificates (a fleet behind one NAT address): the node's total cap bounds those.
      const kind = c.get("principal").kind;
      const addr = kind === "control" || kind === "proxy"
        ? null
        : c.env?.remoteAddr?.hostname ?? null;
      const held = addr === null ? 0 : watchersByAddress.get(addr) ?? 0;
      if (held >= MAX_WATCHERS_PER_ADDRESS) {
        throw new ApiError(
          429,
          "too_many_watchers",
          `${addr} holds ${held} blocking queries already`,
          { limit: MAX_WATCHERS_PER_ADDRESS },
        );
      }
      if (addr !== null) watchersByAddress.set(addr, held + 1);
      try {
        await backend.watcher.wait(q.index!, waitMs, c.req.raw.signal);
      } catch (e) {
        if (e instanceof TooManyWatchersError) {
          throw new ApiError(429, "too_many_watchers", e.message, { limit: e.limit });
        }
        throw e;
      } finally {
        if (addr !== null) {
          const n = (watchersByAddress.get(addr) ?? 1) - 1;
          if (n > 0) watchersByAddress.set(addr, n);
          else watchersByAddress.delete(addr);
        }
      }
    }
    const feed = currentFeed();
    // A proxy that asks for a delta gets only what changed since the index it holds, if this
    // node served that index; anyone else (older proxies, operators) gets the whole catalog.
    const wantsDelta = blocking && c.req.header(CATALOG_DELTA_HEADER) === "1";
    const bytes = (wantsDelta ? feed.delta(q.index!) : null) ?? feed.full();
    c.header(INDEX_HEADER, String(feed.index));
    c.header("content-type", "application/json");
    // One encoded buffer per index, shared by every answer: a string would be encoded again for
    // each of a thousand watchers woken by one write.
    return c.body(bytes as Uint8Array<ArrayBuffer>);
  });

  /**
   * The catalog answers, built once per state index: a write wakes every blocking query at
   * once, and each building and serialising the whole catalog for itself blocked the event loop
   * for seconds with a fleet's worth of watchers (and could run the node out of memory).
   */
  let feedState: unknown = null;
  const catalogFeed = new CatalogFeed();
  /** Blocking catalog queries waiting now, by client address. */
  const watchersByAddress = new Map<string, number>();
  function currentFeed(): CatalogFeed {
    const st = backend.state();
    // A new state object (a snapshot installed) with the same index is a different catalog.
    if (feedState !== st && feedState !== null) catalogFeed.reset();
    if (feedState !== st || catalogFeed.index !== st.index || catalogFeed.empty) {
      catalogFeed.observe(st.catalog());
      feedState = st;
    }
    return catalogFeed;
  }

  // --- resources --------------------------------------------------------------------------

  app.put("/v1/resources", async (c) => {
    const { bytes, value } = await body(c);
    const items = parseResourceBody(value);
    const r = await commit(c, bytes, { type: "put_resource", items });
    if (r instanceof Response) return r;
    if (r.value.type !== "put_resource") throw new Error("apply result does not match command");
    return c.json({ index: r.index, items: r.value.items });
  });

  app.get("/v1/resources", async (c) => {
    const q = query(c, _ResourcesQuery);
    const kind = q.kind === undefined ? undefined : _kind(q.kind);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    withIndex(c);
    return c.json({ index: backend.state().index, resources: backend.state().listResources(kind) });
  });

  app.get("/v1/resources/:kind/:name", async (c) => {
    const kind = _kind(c.req.param("kind"));
    const name = _name("path.name", c.req.param("name"));
    const q = query(c, _StaleQuery);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    const r = backend.state().getResource(kind, name);
    if (!r) throw new ApiError(404, "not_found", `no resource ${kind}/${name}`, { kind, name });
    withIndex(c);
    return c.json(r);
  });

  app.delete("/v1/resources/:kind/:name", async (c) => {
    const kind = _kind(c.req.param("kind"));
    const name = _name("path.name", c.req.param("name"));
    const r = await commit(c, null, { type: "delete_resource", kind, name });
    if (r instanceof Response) return r;
    if (r.value.type !== "delete_resource") throw new Error("apply result does not match command");
    return c.json({ index: r.index, kind, name, revision: r.value.revision });
  });

  app.get("/v1/resources/:kind/:name/history", async (c) => {
    const kind = _kind(c.req.param("kind"));
    const name = _name("path.name", c.req.param("name"));
    const q = query(c, _StaleQuery);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    const h = backend.state().history(kind, name);
    if (!h) throw new ApiError(404, "not_found", `no resource ${kind}/${name}`, { kind, name });
    withIndex(c);
    return c.json({ kind, name, revisions: h });
  });

  app.post("/v1/resources/:kind/:name/rollback", async (c) => {
    const kind = _kind(c.req.param("kind"));
    const name = _name("path.name", c.req.param("name"));
    const { bytes, value } = await body(c);
    const { revision } = validate(_RollbackBody, value);
    const r = await commit(c, bytes, { type: "rollback_resource", kind, name, revision });
    if (r instanceof Response) return r;
    if (r.value.type !== "rollback_resource") {
      throw new Error("apply result does not match command");
    }
    return c.json({
      index: r.index,
      kind,
      name,
      outcome: r.value.outcome,
      revision: r.value.revision,
      from_revision: revision,
    });
  });

  // --- certificate authority and join tokens ---------------------------------------------
  // The CA's private keys live in the replicated state; these routes serve only certificates
  // and token records without hashes (docs/security.md).

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
    const q = query(c, _StaleQuery);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    const ca = requireCa();
    return c.json({
      trust_domain: ca.trustDomain,
      active_root_id: ca.activeRootId,
      roots: trustBundle(ca),
    });
  });

  // The files a new control node needs (`skein ctl ca export-seed`): the active root and its
  // key. Admin only (the route table: POST /v1/ca/* but sign); every export leaves a log line.
  app.post("/v1/ca/export-seed", async (c) => {
    const bytes = await readBodyBytes(c.req.raw, limits.maxBodyBytes);
    if (bytes.byteLength > 0) validate(z.strictObject({}), parseJsonBody(bytes));
    const fwd = await consistentRead(c, false, 0, bytes);
    if (fwd) return fwd;
    const ca = requireCa();
    const root = ca.roots.find((r) => r.id === ca.activeRootId)!;
    const p = c.get("principal");
    log.warn("CA seed exported", {
      root_id: root.id,
      by: p.kind === "operator" ? `operator ${p.tokenId}` : p.kind,
    });
    return c.json({
      trust_domain: ca.trustDomain,
      root_id: root.id,
      cert_pem: root.certPem,
      key_pem: root.keyPem,
    });
  });

  // Only the leader hears every proxy's report, so a follower forwards the question.
  app.get("/v1/ca/rotation", async (c) => {
    if (!backend.isLeader()) return await forward(c, null);
    const st = backend.rotationStatus?.() ?? null;
    if (st === null) throw new ApiError(503, "no_ca", "the cluster has no CA yet");
    return c.json(st);
  });

  app.post("/v1/ca/sign", async (c) => {
    // Read before any credential is checked (the join token is in it): no more than a CSR needs.
    const { bytes, value } = await body(c, MAX_SIGN_BODY_BYTES);
    const req = validate(_SignBody, value);
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
    if (!backend.isLeader()) return await forward(c, bytes);
    const fwd = await consistentRead(c, false, 0, bytes);
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
      throw _tokenRefusal(check.reason);
    }
    let signed;
    try {
      signed = await signCsr(ca, {
        csrPem: req.csr,
        identity: { kind: "service", service: check.record.service },
        now,
        ttlMs: leafTtlMs,
      });
    } catch (e) {
      if (e instanceof CaError) {
        throw new ApiError(e.code === "revoked" ? 403 : 400, e.code, e.message);
      }
      throw e;
    }
    const r = await commit(c, bytes, { type: "consume_join_token", id: check.record.id, now });
    if (r instanceof Response) return r;
    log.info("certificate issued", {
      spiffe_id: signed.spiffeId,
      serial: signed.serial,
      not_after: new Date(signed.notAfter).toISOString(),
      join_id: check.record.id,
    });
    return c.json({
      certPem: signed.certPem,
      caPem: signed.caPem,
      spiffeId: signed.spiffeId,
      serial: signed.serial,
      notBefore: signed.notBefore,
      notAfter: signed.notAfter,
    });
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
    const fwd = await consistentRead(c, false, 0, bytes);
    if (fwd) return fwd;
    const ca = requireCa();
    if (!p.spiffeId.startsWith(`spiffe://${ca.trustDomain}/`)) {
      throw new ApiError(
        403,
        "forbidden",
        `${p.spiffeId} is not of trust domain ${ca.trustDomain}`,
      );
    }
    let signed;
    try {
      signed = await signCsr(ca, {
        csrPem,
        identity: p.kind === "proxy"
          ? { kind: "service", service: p.service }
          : { kind: "control", node: p.node },
        now: clock(),
        ttlMs: leafTtlMs,
      });
    } catch (e) {
      if (e instanceof CaError) {
        throw new ApiError(e.code === "revoked" ? 403 : 400, e.code, e.message);
      }
      throw e;
    }
    log.info("certificate renewed", {
      spiffe_id: signed.spiffeId,
      serial: signed.serial,
      not_after: new Date(signed.notAfter).toISOString(),
    });
    return c.json({
      certPem: signed.certPem,
      caPem: signed.caPem,
      spiffeId: signed.spiffeId,
      serial: signed.serial,
      notBefore: signed.notBefore,
      notAfter: signed.notAfter,
    });
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
    if (!backend.isLeader()) return await forward(c, bytes);
    const prev = caLock;
    let release = () => {};
    caLock = new Promise<void>((r) => release = r);
    await prev;
    try {
      const fwd = await consistentRead(c, false, 0, bytes);
      if (fwd) return fwd;
      const ca = requireCa();
      let next: CaState;
      try {
        next = await f(ca, clock());
      } catch (e) {
        if (e instanceof CaError) {
          throw new ApiError(e.code === "rotation_in_progress" ? 409 : 400, e.code, e.message);
        }
        throw e;
      }
      if (next === ca) {
        return c.json({ index: backend.state().index, changed: false, ca: publicCaView(ca) });
      }
      const r = await commit(c, bytes, {
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
      });
      return c.json({ index: r.index, changed: true, ca: view });
    } finally {
      release();
    }
  }

  app.post("/v1/ca/rotate", async (c) => {
    const { bytes, value } = await body(c);
    const req = validate(_RotateBody, value);
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
    const { bytes, value } = await body(c);
    const req = validate(_ActivateBody, value);
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
    const bytes = await readBodyBytes(c.req.raw, limits.maxBodyBytes);
    if (bytes.byteLength > 0) validate(z.strictObject({}), parseJsonBody(bytes));
    return await changeCa(c, bytes, "finish", (ca) => finishRotation(ca));
  });

  app.post("/v1/ca/revoke", async (c) => {
    const { bytes, value } = await body(c);
    const req = validate(_RevokeBody, value);
    if ((req.spiffe_id === undefined) === (req.service === undefined)) {
      throw new ApiError(400, "invalid_request", "body: give exactly one of spiffe_id and service");
    }
    const spiffeId = req.spiffe_id ??
      `spiffe://${backend.state().ca()?.trustDomain ?? "unknown"}/svc/${req.service}`;
    const r = await commit(c, bytes, {
      type: "revoke_identity",
      spiffe_id: spiffeId,
      now: clock(),
      reason: req.reason,
    });
    if (r instanceof Response) return r;
    if (r.value.type !== "revoke_identity") throw new Error("apply result does not match command");
    return c.json({ index: r.index, spiffe_id: r.value.spiffeId, changed: r.value.changed });
  });

  app.post("/v1/tokens", async (c) => {
    const { bytes, value } = await body(c);
    const req = validate(_TokenBody, value);
    const ttlMs = parseDuration(req.ttl);
    if (ttlMs === null) {
      throw new ApiError(
        400,
        "invalid_request",
        `body.ttl: expected a duration like "1h", got ${JSON.stringify(req.ttl)}`,
      );
    }
    let made;
    try {
      made = createJoinToken({ service: req.service, ttlMs, uses: req.uses, now: clock() });
    } catch (e) {
      throw new ApiError(400, "invalid_request", `body: ${(e as Error).message}`);
    }
    const r = await commit(c, bytes, { type: "create_join_token", record: made.record });
    if (r instanceof Response) return r;
    // The secret is shown once, here; the cluster keeps only its hash.
    return c.json({
      token: made.secret,
      id: made.record.id,
      service: made.record.service,
      uses: made.record.uses,
      expires_at: new Date(made.record.expiresAt).toISOString(),
      index: r.index,
    }, 201);
  });

  app.get("/v1/tokens", async (c) => {
    const q = query(c, _StaleQuery);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    return c.json({ tokens: backend.state().joinTokens().map(publicJoinToken) });
  });

  app.post("/v1/operator-tokens", async (c) => {
    const { bytes, value } = await body(c);
    const req = validate(_OperatorTokenBody, value);
    let ttlMs: number | undefined;
    if (req.ttl !== undefined) {
      const ms = parseDuration(req.ttl);
      if (ms === null || ms < 1) {
        throw new ApiError(
          400,
          "invalid_request",
          `body.ttl: expected a duration like "24h", got ${JSON.stringify(req.ttl)}`,
        );
      }
      ttlMs = ms;
    }
    const made = createOperatorToken({ name: req.name, role: req.role, ttlMs, now: clock() });
    const r = await commit(c, bytes, { type: "put_operator_token", record: made.record });
    if (r instanceof Response) return r;
    log.info("operator token created", { credential_id: made.record.id, role: made.record.role });
    // The secret is shown once, here; the cluster keeps only its hash.
    return c.json({
      token: made.secret,
      id: made.record.id,
      name: made.record.name,
      role: made.record.role,
      expires_at: made.record.expiresAt === null
        ? null
        : new Date(made.record.expiresAt).toISOString(),
      index: r.index,
    }, 201);
  });

  app.get("/v1/operator-tokens", async (c) => {
    const q = query(c, _StaleQuery);
    const fwd = await consistentRead(c, q.stale);
    if (fwd) return fwd;
    return c.json({ tokens: backend.state().operatorTokens().map(publicOperatorToken) });
  });

  app.delete("/v1/operator-tokens/:id", async (c) => {
    const id = c.req.param("id");
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      throw new ApiError(400, "invalid_request", `path.id: not a token id: ${JSON.stringify(id)}`);
    }
    const r = await commit(c, null, { type: "revoke_operator_token", id });
    if (r instanceof Response) return r;
    log.info("operator token revoked", { credential_id: id });
    return c.json({ index: r.index, revoked: id });
  });

  // --- telemetry --------------------------------------------------------------------------

  if (opts.dashboard !== undefined) {
    app.route("/", dashboardRoutes({ backend, window: opts.dashboard, now: clock }));
  }

  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(renderControlMetrics(backend, metrics, catalogFeed.stats));
  });

  return app;
}

/** Whether the instances of a heartbeat that are registered all live on `node`. */
function _reportsOwnNode(
  backend: ControlBackend,
  instances: readonly { service: string; id: string }[],
  node: string,
): boolean {
  const st = backend.state();
  return instances.every((i) => {
    const known = st.instance(i.service, i.id);
    return known === undefined || known.node === node;
  });
}
