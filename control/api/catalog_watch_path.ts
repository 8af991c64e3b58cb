/**
 * The lean path of proxies' blocking catalog watches: `GET /v1/catalog?stale=true&index=N`
 * from a verified mesh certificate is held on the node's own request and response objects, not
 * turned into a Web `Request`, routed, and given a promise, a timer and abort listeners each.
 * One listener on the node's index wakes every held watch a change passes; their answers are
 * the feed's shared bytes (one delta per index they hold), written in slices so Raft's own I/O
 * runs between them; one sweep answers watches whose wait ran out, and one hold on the staleness
 * bound ends them all with 503 `stale_state` when the node passes it.
 *
 * It takes only what the catalog route would answer the same way after waiting: anything else
 * (a token, a forwarded caller, an unusual query, an index already passed, a node past its
 * staleness bound, tracing on) is declined and goes the whole way through the Hono app, which
 * stays the reference for every answer.
 * @module
 */
import type http from "node:http";
import { parseDuration } from "../../config/mod.ts";
import { isRevoked } from "../ca/mod.ts";
import {
  type ApiOptions,
  DEFAULT_BLOCKING_WAIT_MS,
  FORWARDED_PEER_HEADER,
  INDEX_HEADER,
} from "./api_env.ts";
import type { ControlBackend } from "./backend.ts";
import { CATALOG_DELTA_HEADER, type CatalogFeed } from "./catalog_feed.ts";
import { ApiError } from "./errors.ts";
import type { ApiConnInfo } from "./https_bridge.ts";
import type { ApiMetrics } from "./metrics.ts";
import { LAST_CONTACT_HEADER, type StaleBound } from "./stale_bound.ts";
import type { ApiTracing } from "./tracing.ts";
import { type HeldWatch, WatchHub } from "./watch_hub.ts";

/** Answers written per event-loop task when a change wakes many watches at once. */
export const WAKE_SLICE = 256;
/** Interval of the sweep that answers watches whose wait ran out (they end up to this late). */
export const WATCH_SWEEP_MS = 1_000;

/** What {@linkcode CatalogWatchPath} serves from. */
export interface CatalogWatchPathOptions {
  /** The node. */
  backend: ControlBackend;
  /** The catalog answers, shared with the catalog route. */
  feed: CatalogFeed;
  /** The staleness bound, shared with the API. */
  stale: StaleBound;
  /** Request counters, shared with `/metrics`. */
  metrics: ApiMetrics;
  /** Longest blocking wait. */
  maxWaitMs: number;
  /** The API's authorizer; the watch path takes only requests it lets through as a proxy. */
  authorize?: ApiOptions["authorize"];
  /** The API's tracing; while it has a tracer, watches go the traced way. */
  tracing?: ApiTracing;
}

/** The query of a watch the lean path takes, or null when the catalog route should answer. */
export function parseWatchQuery(
  search: string,
  maxWaitMs: number,
): { index: number; waitMs: number } | null {
  let index: number | null = null;
  let waitMs = DEFAULT_BLOCKING_WAIT_MS;
  let stale = false;
  const seen = new Set<string>();
  for (const [k, v] of new URLSearchParams(search)) {
    // A repeated key, an unknown one or an odd value: the route's schema has the last word.
    if (seen.has(k)) return null;
    seen.add(k);
    if (k === "stale") {
      if (v !== "true" && v !== "1") return null;
      stale = true;
    } else if (k === "index") {
      if (!/^\d{1,15}$/.test(v)) return null;
      index = Number(v);
    } else if (k === "wait") {
      if (v.length > 32) return null;
      const ms = parseDuration(v);
      if (ms === null) return null;
      waitMs = ms;
    } else return null;
  }
  waitMs = Math.min(waitMs, maxWaitMs);
  if (!stale || index === null || waitMs <= 0) return null;
  return { index, waitMs };
}

interface _Watch extends HeldWatch {
  readonly res: http.ServerResponse;
  readonly delta: boolean;
}

/** Holds proxies' blocking catalog watches and answers them in batches (see the module doc). */
export class CatalogWatchPath {
  readonly #o: CatalogWatchPathOptions;
  readonly #hub = new WatchHub<_Watch>();
  readonly #unlisten: () => void;
  #sweep: ReturnType<typeof setInterval> | null = null;
  #bound: { signal: AbortSignal; release: () => void } | null = null;
  #flushing = false;
  #closed = false;

  /** Starts following the node's index. */
  constructor(o: CatalogWatchPathOptions) {
    this.#o = o;
    this.#unlisten = o.backend.watcher.onNotify(() => this.#scheduleWake());
  }

  /** Watches held now. */
  get held(): number {
    return this.#hub.size;
  }

  /**
   * Takes `req` if it is a watch this path answers (and then answers it, now or later); false
   * leaves it to the API app.
   */
  intercept(req: http.IncomingMessage, res: http.ServerResponse, info: ApiConnInfo): boolean {
    if (this.#closed || req.method !== "GET") return false;
    const url = req.url ?? "";
    if (!url.startsWith("/v1/catalog?")) return false;
    const peer = info.peer;
    if (peer === null || peer.kind === "control") return false;
    const h = req.headers;
    if (
      h.authorization !== undefined || h[FORWARDED_PEER_HEADER] !== undefined ||
      h["transfer-encoding"] !== undefined ||
      (h["content-length"] !== undefined && h["content-length"] !== "0")
    ) return false;
    const o = this.#o;
    if (o.tracing !== undefined && o.tracing.sink() !== null) return false;
    const q = parseWatchQuery(url.slice("/v1/catalog?".length), o.maxWaitMs);
    if (q === null) return false;
    if (o.authorize !== undefined) {
      try {
        const p = o.authorize({
          token: null,
          authorization: null,
          method: "GET",
          path: "/v1/catalog",
          peer,
        });
        if (p instanceof Promise) {
          p.catch(() => {});
          return false;
        }
        if (p !== undefined && p.kind !== "proxy") return false;
      } catch {
        return false;
      }
    }
    const st = o.backend.state();
    const ca = st.ca();
    if (ca && isRevoked(ca, peer.uri)) return false;
    if (st.index > q.index || o.stale.verdict().refusal !== null) return false;
    req.resume();
    const w = o.backend.watcher;
    if (this.#hub.size + w.waiting >= w.maxWaiters) {
      this.#write(
        res,
        new ApiError(
          429,
          "too_many_watchers",
          `too many blocking queries in flight (limit ${w.maxWaiters})`,
          { limit: w.maxWaiters },
        ),
        o.stale.verdict().lastContact,
      );
      return true;
    }
    const watch: _Watch = {
      after: q.index,
      deadline: performance.now() + q.waitMs,
      res,
      delta: h[CATALOG_DELTA_HEADER] === "1",
    };
    this.#hub.add(watch);
    res.once("close", () => {
      if (this.#hub.delete(watch)) this.#idle();
    });
    this.#busy();
    return true;
  }

  /** Stops following the index and answers every held watch now. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten();
    this.#answer(this.#hub.takeAll());
    this.#idle();
  }

  /** Starts the sweep and the staleness hold once a watch is held. */
  #busy(): void {
    this.#sweep ??= setInterval(() => {
      this.#answer(this.#hub.takeExpired(performance.now()));
      this.#idle();
    }, WATCH_SWEEP_MS);
    if (this.#bound === null) {
      const bound = this.#bound = this.#o.stale.hold();
      bound.signal.addEventListener("abort", () => {
        if (this.#bound !== bound) return;
        bound.release();
        this.#bound = null;
        this.#answer(this.#hub.takeAll());
        this.#idle();
      }, { once: true });
    }
  }

  /** Stops the sweep and the hold when no watch is held. */
  #idle(): void {
    if (this.#hub.size > 0) return;
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
    this.#bound?.release();
    this.#bound = null;
  }

  /** Wakes the watches a change passed, once the task that applied it has finished. */
  #scheduleWake(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    setTimeout(() => {
      this.#flushing = false;
      const index = this.#o.feed.follow(this.#o.backend.state()).index;
      this.#answer(this.#hub.takePassed(index));
      this.#idle();
    }, 0);
  }

  /** Answers `watches` in slices of {@linkcode WAKE_SLICE}, each in its own task. */
  #answer(watches: _Watch[], from = 0): void {
    const end = Math.min(watches.length, from + WAKE_SLICE);
    if (from >= end) return;
    const feed = this.#o.feed.follow(this.#o.backend.state());
    const v = this.#o.stale.verdict();
    const head = {
      [INDEX_HEADER.toLowerCase()]: String(feed.index),
      [LAST_CONTACT_HEADER]: v.lastContact,
    };
    for (let i = from; i < end; i++) {
      const w = watches[i]!;
      if (w.res.destroyed) continue;
      if (v.refusal !== null) {
        this.#write(w.res, v.refusal, v.lastContact);
        continue;
      }
      // A delta only from an index this node served, else the whole catalog, as the route does.
      const bytes = (w.delta ? feed.delta(w.after) : null) ?? feed.full();
      this.#send(w.res, 200, { ...head }, bytes);
    }
    if (end < watches.length) setTimeout(() => this.#answer(watches, end), 0);
  }

  /** Writes an error answer as the API's error handler would. */
  #write(res: http.ServerResponse, e: ApiError, lastContact: string): void {
    const headers: Record<string, string> = { [LAST_CONTACT_HEADER]: lastContact };
    this.#send(res, e.status, headers, new TextEncoder().encode(JSON.stringify(e.body())));
  }

  /** Head and body in one go, with a length; counted as the catalog route's answers are. */
  #send(
    res: http.ServerResponse,
    status: number,
    headers: Record<string, string>,
    body: Uint8Array,
  ): void {
    if (res.destroyed || res.headersSent) return;
    headers["content-type"] = "application/json";
    headers["content-length"] = String(body.byteLength);
    res.writeHead(status, headers);
    res.end(body);
    this.#o.metrics.countRequest("GET", "/v1/catalog", status);
  }
}
