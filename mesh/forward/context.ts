/**
 * A forwarder's options, counters and the state it shares with its client connections. Kept
 * apart from `forwarder.ts` so the per-request layers can read them without importing the
 * listener that starts them.
 * @module
 */
import type { Logger } from "../../common/log.ts";
import { DEFAULT_HEAD_LIMITS, type HeadLimits } from "../http1/mod.ts";
import type { CoarseTimers } from "./coarse_timers.ts";
import { DEFAULT_TCP_IDLE_TIMEOUT_MS, type IdleSweeper } from "./idle.ts";
import type { OpenUpgrades } from "./open_upgrades.ts";
import type { ConnectionPool } from "./pool.ts";
import type { H2Handoff, ListenerInfo, Router } from "./types.ts";

/** Most client connections served at once; accepting pauses at the cap. */
export const DEFAULT_MAX_CLIENT_CONNECTIONS = 10_000;
/** Read buffer per client connection, in bytes (grows only for large heads). */
export const DEFAULT_CLIENT_BUFFER_BYTES = 16 * 1024;
/** How long a keep-alive client connection may sit idle between requests, in ms. */
export const DEFAULT_KEEP_ALIVE_IDLE_MS = 60_000;
/** How long a client may take to send a complete request head, in ms. */
export const DEFAULT_HEADER_TIMEOUT_MS = 30_000;
/** Largest request body buffered so the request can be retried, in bytes. */
export const DEFAULT_MAX_RETRY_BODY_BYTES = 64 * 1024;
/** Most attempts per request, whatever the router says. */
export const MAX_ATTEMPTS = 8;
/** Granularity of the idle/header timeout sweep, in ms. */
export const SWEEP_INTERVAL_MS = 1_000;

/** Options for {@linkcode HttpForwarder}. */
export interface ForwarderOptions {
  /** This proxy's node name, sent as `x-skein-proxy` on responses it generates. */
  node: string;
  /** Describes the listener to the router. */
  listener: ListenerInfo;
  /** Decides where each request goes. */
  router: Router;
  /** Where events go. */
  logger: Logger;
  /** Upstream connection pool; shared between listeners if given. @default a new pool */
  pool?: ConnectionPool;
  /** @default DEFAULT_MAX_CLIENT_CONNECTIONS */
  maxClientConnections?: number;
  /** @default DEFAULT_CLIENT_BUFFER_BYTES */
  clientBufferBytes?: number;
  /** @default DEFAULT_KEEP_ALIVE_IDLE_MS */
  keepAliveIdleMs?: number;
  /** @default DEFAULT_HEADER_TIMEOUT_MS */
  headerTimeoutMs?: number;
  /** @default DEFAULT_MAX_RETRY_BODY_BYTES */
  maxRetryBodyBytes?: number;
  /** Head limits for requests and responses. @default DEFAULT_HEAD_LIMITS */
  limits?: HeadLimits;
  /** Append the client address to `x-forwarded-for`. @default true */
  forwardedFor?: boolean;
  /**
   * The callee's inbound: drop the identity fields a caller could forge and tell the app who
   * called in `x-skein-caller` (the verified peer identity). @default false
   */
  callerHeader?: boolean;
  /**
   * An upgraded connection (WebSocket, a TCP tunnel's callee end) with no byte either way for
   * this long is closed, in ms; 0 = never. @default DEFAULT_TCP_IDLE_TIMEOUT_MS
   */
  upgradedIdleMs?: number;
  /** Clock of the upgraded idle timeout, in ms (tests). @default performance.now */
  idleClock?: () => number;
  /**
   * Takes over a connection that opens with the HTTP/2 preface (h2c with prior knowledge);
   * null answers it 505 as any other HTTP version. @default null
   */
  h2?: ((h: H2Handoff) => void) | null;
  /**
   * Admits each accepted connection (an ingress listener's per-address cap): null closes it at
   * once, else what it returns is called when the connection ends. @default admits all
   */
  admit?: ((conn: Deno.Conn) => (() => void) | null) | null;
  /**
   * Pre-encoded lines added to every request this listener forwards (an ingress listener's
   * `x-forwarded-proto`); as on the inbound, the identity fields a client could forge are
   * dropped first. Not with `callerHeader`. @default none
   */
  clientLines?: string | null;
  /**
   * The listener faces clients outside the mesh (an ingress listener): the answers the proxy
   * makes itself keep their status and `x-skein-error` cause, but their body names no endpoint,
   * service address or other detail of the inside. @default false
   */
  publicAnswers?: boolean;
}

/** Counters for tests and metrics. */
export interface ForwarderStats {
  /** Client connections accepted. */
  accepted: number;
  /** Client connections open now. */
  active: number;
  /** Requests whose head was parsed. */
  requests: number;
  /** Responses the proxy generated itself, by status. */
  local: Record<number, number>;
  /** Retries performed. */
  retries: number;
  /** Mesh calls turned down unread because they reached no application (see refuse.ts). */
  refused: number;
  /** Request body bytes relayed upstream. */
  requestBodyBytes: number;
  /** Response body bytes relayed to clients. */
  responseBodyBytes: number;
}

/** State shared by a forwarder and its client connections. */
export interface ForwarderCtx {
  /** The options with every default filled in; a reload changes some of them in place. */
  readonly opts: Required<Omit<ForwarderOptions, "pool">>;
  /** This proxy's node name. */
  readonly node: string;
  /** Pooled upstream connections. */
  readonly upstreams: ConnectionPool;
  /** Counters. */
  readonly stats: ForwarderStats;
  /** Set once drain starts. */
  draining: boolean;
  /** Advances once per sweep; deadlines are counted in ticks. */
  tick: number;
  /** Per-attempt budgets (one shared interval instead of a timer per attempt). */
  readonly timers: CoarseTimers;
  /** Idle timeouts of upgraded connections. */
  readonly upgraded: IdleSweeper;
  /** Open upgraded connections whose caller is checked again when policies change. */
  readonly rechecked: OpenUpgrades;
}

/** The options with every default filled in (the pool is the forwarder's own business). */
export function withDefaults(opts: ForwarderOptions): Required<Omit<ForwarderOptions, "pool">> {
  const { pool: _, ...rest } = opts;
  return {
    maxClientConnections: DEFAULT_MAX_CLIENT_CONNECTIONS,
    clientBufferBytes: DEFAULT_CLIENT_BUFFER_BYTES,
    keepAliveIdleMs: DEFAULT_KEEP_ALIVE_IDLE_MS,
    headerTimeoutMs: DEFAULT_HEADER_TIMEOUT_MS,
    maxRetryBodyBytes: DEFAULT_MAX_RETRY_BODY_BYTES,
    limits: DEFAULT_HEAD_LIMITS,
    forwardedFor: true,
    callerHeader: false,
    upgradedIdleMs: DEFAULT_TCP_IDLE_TIMEOUT_MS,
    idleClock: () => performance.now(),
    h2: null,
    admit: null,
    clientLines: null,
    publicAnswers: false,
    ...rest,
  };
}

/** Counters at zero. */
export function newForwarderStats(): ForwarderStats {
  return {
    accepted: 0,
    active: 0,
    requests: 0,
    local: {},
    retries: 0,
    refused: 0,
    requestBodyBytes: 0,
    responseBodyBytes: 0,
  };
}
