/**
 * The control API's shared vocabulary: its options, its Hono environment (the TLS peer and the
 * caller's principal), the headers nodes exchange when forwarding, and the default bounds every
 * route module reads. A module of its own so route modules and `app.ts` share it without
 * importing each other.
 * @module
 */
import type { Logger } from "../../common/mod.ts";
import type { SpiffeId } from "../../common/tls/mod.ts";
import type { Principal } from "../auth/mod.ts";
import type { DashboardWindow } from "../dashboard/window.ts";
import type { ApiMetrics } from "./metrics.ts";
import type { ApiTracing } from "./tracing.ts";

/** How long a write may wait for commit before the API answers 503 `no_quorum`. */
export const WRITE_TIMEOUT_MS = 5_000;
/** How long a linearizable read may wait for its barrier before 503 `no_quorum`. */
export const READ_TIMEOUT_MS = 5_000;
/**
 * How long a node may go without hearing from a leader and still answer a proxy's stale read:
 * a few election timeouts, so a leader change never trips it, but a cut-off follower's
 * watchers move to another node within seconds.
 */
export const MAX_STALE_MS = 5_000;
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
  /** How long a node may go without hearing from a leader and still answer proxies' stale reads. */
  maxStaleMs: number;
}

/** Options of `createApi`. */
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
  /** Staleness bound of proxies' stale reads (`stale_bound.ts`). @default MAX_STALE_MS */
  maxStaleMs?: number;
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
 * when the app runs without `serveApiHttps` (tests, plaintext), which means no peer.
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
