/**
 * Bounded staleness for `?stale=true` reads. Any node answers them from its own state, which
 * spreads the proxies' catalog watches over the cluster; but a follower cut off from its
 * leader would go on answering from an old state forever, so proxies that trust it would never
 * hear of a revocation or a new endpoint. A proxy's stale read on a node that has not heard
 * from a leader within `limits.max_stale` is refused with 503 `stale_state` (the proxy moves
 * to its next control URL), and its blocking watches on such a node end as soon as the bound
 * passes. Operators' stale reads still answer, with `x-skein-last-contact` saying how old.
 * @module
 */
import type { Context } from "hono";
import type { ApiEnv, ApiLimits } from "./api_env.ts";
import type { ControlBackend } from "./backend.ts";
import { ApiError } from "./errors.ts";

/** Header on stale reads: ms since the answering node last heard from its leader. */
export const LAST_CONTACT_HEADER = "x-skein-last-contact";

/** How often a node with waiting proxy watches checks its staleness, in ms. */
export const STALE_POLL_MS = 250;

/** Whether `c`'s caller is held to the staleness bound (proxies; operators see the header). */
function _bounded(c: Context<ApiEnv>): boolean {
  return c.get("principal")?.kind === "proxy";
}

/** Enforces the staleness bound on stale reads (see the module doc). */
export class StaleBound {
  readonly #backend: Pick<ControlBackend, "sinceLeaderContact">;
  readonly #limits: Pick<ApiLimits, "maxStaleMs">;
  readonly #pollMs: number;
  #ac = new AbortController();
  #holders = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  /** Checks `backend`'s leader contact against the live `limits.maxStaleMs`. */
  constructor(
    backend: Pick<ControlBackend, "sinceLeaderContact">,
    limits: Pick<ApiLimits, "maxStaleMs">,
    pollMs = STALE_POLL_MS,
  ) {
    this.#backend = backend;
    this.#limits = limits;
    this.#pollMs = pollMs;
  }

  /**
   * Before a stale read is answered from this node: sets the last-contact header, and throws
   * 503 `stale_state` to a proxy when the node is past the bound.
   */
  check(c: Context<ApiEnv>): void {
    const v = this.verdict();
    c.header(LAST_CONTACT_HEADER, v.lastContact);
    if (_bounded(c) && v.refusal !== null) throw v.refusal;
  }

  /**
   * The node's staleness now: the value of the last-contact header, and the 503 `stale_state`
   * a proxy gets when the node is past the bound (null within it).
   */
  verdict(): { lastContact: string; refusal: ApiError | null } {
    const since = this.#backend.sinceLeaderContact();
    const lastContact = Number.isFinite(since) ? String(Math.round(since)) : "never";
    if (since <= this.#limits.maxStaleMs) return { lastContact, refusal: null };
    return {
      lastContact,
      refusal: new ApiError(
        503,
        "stale_state",
        `this node ${
          Number.isFinite(since)
            ? `last heard from a leader ${Math.round(since)} ms ago`
            : "has not heard from a leader"
        } (bound: limits.max_stale = ${this.#limits.maxStaleMs} ms); ask another control node`,
        { last_contact_ms: Number.isFinite(since) ? Math.round(since) : null },
      ),
    };
  }

  /**
   * A signal for a proxy's blocking watch that aborts once this node passes the bound, so the
   * watch ends then instead of at its timeout; undefined for other callers. Call the returned
   * release when the watch ends.
   */
  watch(c: Context<ApiEnv>): { signal: AbortSignal; release: () => void } | undefined {
    return _bounded(c) ? this.hold() : undefined;
  }

  /**
   * What {@linkcode watch} gives a proxy's watch, for a holder of proxy watches without a
   * request context: a signal that aborts once the node passes the bound, and its release.
   */
  hold(): { signal: AbortSignal; release: () => void } {
    this.#holders++;
    if (this.#timer === null) {
      // One timer for every waiting watch, running only while some wait.
      this.#timer = setInterval(() => this.#poll(), this.#pollMs);
      Deno.unrefTimer(this.#timer as unknown as number);
    }
    const signal = this.#ac.signal;
    let released = false;
    return {
      signal,
      release: () => {
        if (released) return;
        released = true;
        if (--this.#holders === 0 && this.#timer !== null) {
          clearInterval(this.#timer);
          this.#timer = null;
        }
      },
    };
  }

  #poll(): void {
    if (this.#backend.sinceLeaderContact() <= this.#limits.maxStaleMs) return;
    const ac = this.#ac;
    this.#ac = new AbortController();
    ac.abort();
  }
}
