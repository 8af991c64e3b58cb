/**
 * What every route group shares: the backend, the live limits, the clock, and the
 * leader-aware paths a request takes — a linearizable read (or the leader's answer), a
 * committed write (or the leader's answer), a membership change — each bounded in time.
 * One instance per API, made by `createApi` and handed to each route module.
 * @module
 */
import type { Context } from "hono";
import type { Logger } from "../../common/mod.ts";
import {
  type ApplyResult,
  type RegistryCommand,
  RegistryCommandSchema,
  type ValidatedCommand,
} from "../registry/mod.ts";
import { callerOf } from "./access.ts";
import { type ApiEnv, type ApiLimits, FORWARD_HEADER, INDEX_HEADER } from "./api_env.ts";
import { type ControlBackend, NotLeaderError } from "./backend.ts";
import { parseJsonBody, readBodyBytes } from "./body.ts";
import { bounded, BoundTimeout, DeadlineExceeded, SharedDeadlines } from "./deadline.ts";
import { ApiError, validationError } from "./errors.ts";
import { type ForwardDeps, forwardToLeader } from "./leader_forward.ts";
import type { ApiMetrics } from "./metrics.ts";
import { applyError } from "./refusals.ts";
import { StaleBound } from "./stale_bound.ts";

/** What {@linkcode ApiCore} is made from. */
export interface ApiCoreOptions {
  /** Structured logger. */
  log: Logger;
  /** Live limits, read on every request so a reload changes them. */
  limits: ApiLimits;
  /** Counters shared with `/metrics`. */
  metrics: ApiMetrics;
  /** Wall clock, ms since the epoch. */
  clock: () => number;
  /** Timeout of a forwarded request. */
  forwardTimeoutMs: number;
  /** Fetch used to forward to the leader. */
  fetch: (req: Request) => Promise<Response>;
}

/** The backend, limits and leader-aware read and write paths the route modules share. */
export class ApiCore {
  /** The node the API serves from. */
  readonly backend: ControlBackend;
  /** Structured logger. */
  readonly log: Logger;
  /** Live limits. */
  readonly limits: ApiLimits;
  /** Counters shared with `/metrics`. */
  readonly metrics: ApiMetrics;
  /** Wall clock, ms since the epoch. */
  readonly clock: () => number;
  /** The staleness bound of proxies' stale reads. */
  readonly stale: StaleBound;
  readonly #forward: ForwardDeps;
  // Writes share their commit timeout per bucket of time: one timer per bucket, not per write.
  #writeDeadlines: SharedDeadlines;
  #deadlinesMs: number;

  /** Creates the core of one API over `backend`. */
  constructor(backend: ControlBackend, o: ApiCoreOptions) {
    this.backend = backend;
    this.log = o.log;
    this.limits = o.limits;
    this.metrics = o.metrics;
    this.clock = o.clock;
    this.stale = new StaleBound(backend, o.limits);
    this.#forward = {
      backend,
      metrics: o.metrics,
      log: o.log,
      fetch: o.fetch,
      timeoutMs: o.forwardTimeoutMs,
    };
    this.#deadlinesMs = o.limits.writeTimeoutMs;
    this.#writeDeadlines = new SharedDeadlines(this.#deadlinesMs);
  }

  /** A write's commit deadline; a reloaded timeout takes effect for the next writes. */
  #leaseDeadline() {
    if (this.#deadlinesMs !== this.limits.writeTimeoutMs) {
      this.#deadlinesMs = this.limits.writeTimeoutMs;
      this.#writeDeadlines = new SharedDeadlines(this.#deadlinesMs);
    }
    return this.#writeDeadlines.lease();
  }

  /** Reads the body (at most `limit` and the live body limit) and parses it as JSON. */
  async body(
    c: Context<ApiEnv>,
    limit = this.limits.maxBodyBytes,
  ): Promise<{ bytes: Uint8Array<ArrayBuffer>; value: unknown }> {
    const bytes = await readBodyBytes(c.req.raw, Math.min(limit, this.limits.maxBodyBytes));
    return { bytes, value: parseJsonBody(bytes) };
  }

  /** Sends the request to the leader's API once; loops end at the first non-leader. */
  forward(
    c: Context<ApiEnv>,
    bytes: Uint8Array<ArrayBuffer> | null,
    extraMs = 0,
  ): Promise<Response> {
    return forwardToLeader(this.#forward, c, bytes, extraMs);
  }

  /** Sets the index header to the state index this node answers from. */
  withIndex(c: Context<ApiEnv>): void {
    c.header(INDEX_HEADER, String(this.backend.state().index));
  }

  /**
   * Null when this node may answer itself (after a read barrier, unless `stale`), else the
   * leader's answer to the same request (`bytes` is the body to forward, for POSTs).
   */
  async consistentRead(
    c: Context<ApiEnv>,
    stale: boolean | undefined,
    extraMs = 0,
    bytes: Uint8Array<ArrayBuffer> | null = null,
  ): Promise<Response | null> {
    if (stale) {
      this.stale.check(c);
      return null;
    }
    const ac = new AbortController();
    try {
      await bounded(this.backend.linearizableRead(ac.signal), this.limits.readTimeoutMs, ac);
      return null;
    } catch (e) {
      if (e instanceof NotLeaderError) return await this.forward(c, bytes, extraMs);
      if (e instanceof BoundTimeout) {
        const hint = c.req.method === "GET" ? "; retry or use ?stale=true" : "; retry";
        throw new ApiError(
          503,
          "no_quorum",
          `read barrier did not complete within ${this.limits.readTimeoutMs} ms${hint}`,
          { timeout_ms: this.limits.readTimeoutMs },
        );
      }
      throw e;
    }
  }

  /** Commits `cmd` (forwarding when not leader); a Response when the leader answered. */
  async commit(
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
    if (c.req.header(FORWARD_HEADER) !== undefined && !this.backend.isLeader()) {
      return await this.forward(c, bytes);
    }
    const deadline = this.#leaseDeadline();
    let r: ApplyResult;
    try {
      let proposed: Promise<ApplyResult>;
      try {
        proposed = this.backend.propose(valid, deadline.signal, callerOf(c));
      } catch (e) {
        // A synchronous refusal still goes through bound(), which releases the lease.
        proposed = Promise.reject(e);
      }
      r = await deadline.bound(proposed);
    } catch (e) {
      if (e instanceof NotLeaderError) return await this.forward(c, bytes);
      // The backend may answer the shared signal's abort before the race sees the deadline.
      if (e instanceof DeadlineExceeded || deadline.signal.aborted) {
        this.metrics.writeTimeouts++;
        throw new ApiError(
          503,
          "no_quorum",
          `write was not committed within ${this.limits.writeTimeoutMs} ms; no quorum of control nodes reachable`,
          { timeout_ms: this.limits.writeTimeoutMs },
        );
      }
      throw e;
    }
    if (!r.ok) throw applyError(r);
    return r;
  }

  /** Runs a membership change on the leader within the write timeout, or forwards it there. */
  async membership(
    c: Context<ApiEnv>,
    op: (signal: AbortSignal) => Promise<void>,
    bytes: Uint8Array<ArrayBuffer> | null,
  ): Promise<{ forwarded: Response | null }> {
    if (!this.backend.isLeader()) return { forwarded: await this.forward(c, bytes) };
    const ac = new AbortController();
    try {
      await bounded(op(ac.signal), this.limits.writeTimeoutMs, ac);
      return { forwarded: null };
    } catch (e) {
      if (e instanceof NotLeaderError) return { forwarded: await this.forward(c, bytes) };
      if (e instanceof BoundTimeout) {
        throw new ApiError(
          503,
          "no_quorum",
          `membership change was not committed within ${this.limits.writeTimeoutMs} ms`,
          { timeout_ms: this.limits.writeTimeoutMs },
        );
      }
      throw e;
    }
  }
}
